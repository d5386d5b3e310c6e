package secheaders_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/levqor/levqor/secheaders"
)

// discardWriter is a ResponseWriter that reuses its header map, so the
// benchmark measures the middleware, not the recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func BenchmarkMiddleware(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name string
		cfg  secheaders.Config
	}{
		{"nonce", secheaders.Config{}},
		{"no-nonce", secheaders.Config{CSP: secheaders.DefaultCSP().WithNonce()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, err := secheaders.New(tc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			handler := h.Handler(noop)
			r := httptest.NewRequest("GET", "/", nil)
			w := &discardWriter{h: make(http.Header, 32)}
			b.ReportAllocs()
			for b.Loop() {
				handler.ServeHTTP(w, r)
			}
		})
	}
}
