package secheaders_test

import (
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/levqor/levqor/secheaders"
)

func Example() {
	h, _ := secheaders.New(secheaders.Config{})
	page := template.Must(template.New("p").Parse(`<script nonce="{{.}}">hello()</script>`))
	handler := h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = page.Execute(w, secheaders.Nonce(r.Context()))
	}))

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	attr := strings.TrimSuffix(strings.TrimPrefix(w.Body.String(), `<script nonce="`), `">hello()</script>`)
	nonce := html.UnescapeString(attr) // html/template writes "+" as "&#43;"; browsers decode it
	fmt.Println("nonce in CSP:", strings.Contains(w.Header().Get("Content-Security-Policy"), "'nonce-"+nonce+"'"))
	fmt.Println("X-Frame-Options:", w.Header().Get("X-Frame-Options"))
	fmt.Println("HSTS on plain HTTP:", w.Header().Get("Strict-Transport-Security") != "")
	// Output:
	// nonce in CSP: true
	// X-Frame-Options: DENY
	// HSTS on plain HTTP: false
}

func ExampleCSP() {
	csp := secheaders.DefaultCSP().
		Add(secheaders.ImgSrc, "https://cdn.example.com").
		WithNonce(). // no nonce: a fully static policy
		UpgradeInsecureRequests(false)
	h, err := secheaders.New(secheaders.Config{CSP: csp})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	w := httptest.NewRecorder()
	h.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Header().Get("Content-Security-Policy"))
	// Output: default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; script-src 'self'; script-src-attr 'none'; style-src 'self'; img-src 'self' data: https://cdn.example.com; font-src 'self'; connect-src 'self'
}

// ExampleReportHandler receives CSP violation reports; a repeated
// violation is logged once per LogInterval and only counted after that.
func ExampleReportHandler() {
	logged, repeated := 0, 0
	h := secheaders.ReportHandler(secheaders.ReportConfig{
		Logger: slog.New(slog.DiscardHandler),
		OnViolation: func(v secheaders.Violation, first bool) {
			if first {
				logged++
				fmt.Println("violation:", v.EffectiveDirective, v.BlockedURI)
			} else {
				repeated++
			}
		},
	})
	body := `{"csp-report":{"document-uri":"https://app.example/","blocked-uri":"https://evil.example/x.js","effective-directive":"script-src-elem"}}`
	for range 3 {
		req := httptest.NewRequest("POST", "/csp-report", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/csp-report")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	fmt.Println("logged", logged, "repeated", repeated)
	// Output:
	// violation: script-src-elem https://evil.example/x.js
	// 204
	// 204
	// 204
	// logged 1 repeated 2
}
