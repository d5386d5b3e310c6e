package dsar_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/levqor/levqor/dsar"
)

// FuzzHandlerBody: whatever the body says, alice gets her own data or an
// error, never bob's, and nothing panics.
func FuzzHandlerBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"email":"bob@example.com"}`, `{"subject":"alice@example.com"}`, `{"confirm":true}`, `{"email":`, `[]`, `{"email":"x"}{"email":"y"}`} {
		f.Add(s)
	}
	fx := setup(f)
	h := fx.svc.Handler(dsar.HandlerConfig{Subject: func(*http.Request) (string, bool) { return alice, true }, MaxBody: 512})
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/export/summary", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 403, 413:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if strings.Contains(w.Body.String(), bob) {
			t.Fatalf("bob's data for body %q", body)
		}
	})
}
