package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/unrolled/secure"

	"github.com/levqor/levqor/secheaders"
)

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkSecurityHeaders: Levqor's defaults against unrolled/secure set
// up to send the same headers, with a per-request CSP nonce and without.
func BenchmarkSecurityHeaders(b *testing.B) {
	const csp = "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; script-src 'self' $NONCE; script-src-attr 'none'; style-src 'self' $NONCE; img-src 'self' data:; font-src 'self'; connect-src 'self'; upgrade-insecure-requests"
	const staticCSP = "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; script-src 'self'; script-src-attr 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; upgrade-insecure-requests"
	unrolled := func(policy string) *secure.Secure {
		return secure.New(secure.Options{
			ContentSecurityPolicy: policy, ContentTypeNosniff: true, FrameDeny: true, ReferrerPolicy: "no-referrer",
			CrossOriginOpenerPolicy: "same-origin", CrossOriginResourcePolicy: "same-origin",
			PermissionsPolicy: secheaders.DefaultPermissionsPolicy, STSSeconds: 63072000, STSIncludeSubdomains: true, STSPreload: true,
			CustomFrameOptionsValue: "", BrowserXssFilter: false,
		})
	}
	lv, _ := secheaders.New(secheaders.Config{})
	lvStatic, _ := secheaders.New(secheaders.Config{CSP: secheaders.DefaultCSP().WithNonce()})
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"nonce/levqor", lv.Handler(noop)},
		{"nonce/unrolled-secure", unrolled(csp).Handler(noop)},
		{"no-nonce/levqor", lvStatic.Handler(noop)},
		{"no-nonce/unrolled-secure", unrolled(staticCSP).Handler(noop)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			w := &discard{h: make(http.Header, 32)}
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, r)
			}
		})
	}
}
