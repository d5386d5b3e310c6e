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
