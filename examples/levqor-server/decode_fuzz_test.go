package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecode: the server's strict JSON decoding accepts a credentials
// object or answers 400/413, never a panic or a half-read success.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.co","password":"12345678"}`, `{}`, `{"email":1}`, `{"x":1}`, `{"email":"a"} {"email":"b"}`, `nul`, strings.Repeat("[", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/auth/register", strings.NewReader(body))
		w := httptest.NewRecorder()
		var c credentials
		ok := decode(w, r, &c)
		if ok && w.Code != 200 {
			t.Fatalf("accepted with status %d", w.Code)
		}
		if !ok && w.Code != 400 && w.Code != 413 {
			t.Fatalf("rejected %q with status %d", body, w.Code)
		}
	})
}

// FuzzNormaliseEmail: a normalised address is its own normal form, so the
// address the server shows logs in to the same account, and no two
// spellings of one address make two accounts.
func FuzzNormaliseEmail(f *testing.F) {
	for _, s := range []string{"Ada@Example.COM", "jose\u0301@BU\u0308CHER.example", "\u0130\u0301@x.io", "\u03aa\u0301@x.io",
		"\u1fbc\u0345@x.io", "a@x\u2135b.io", "a@xn--bcher-kva.example", "\ufb00@x.io"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normaliseEmail(s)
		if err != nil {
			return
		}
		if again, err := normaliseEmail(n); err != nil || again != n {
			t.Fatalf("%q normalises to %q, which normalises to %q (%v)", s, n, again, err)
		}
	})
}
