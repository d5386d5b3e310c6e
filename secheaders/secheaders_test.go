package secheaders_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/secheaders"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var nonceRE = regexp.MustCompile(`'nonce-([A-Za-z0-9+/=]+)'`)

func build(t *testing.T, cfg secheaders.Config) *secheaders.Headers {
	t.Helper()
	h, err := secheaders.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// run serves one request and returns the response headers and the nonce
// the handler saw in its context.
func run(h *secheaders.Headers, r *http.Request) (http.Header, string, int) {
	var seen string
	w := httptest.NewRecorder()
	h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = secheaders.Nonce(r.Context())
	})).ServeHTTP(w, r)
	return w.Result().Header, seen, w.Code
}

func dump(h http.Header) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+nonceRE.ReplaceAllString(v, "'nonce-NONCE'"))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func TestGolden(t *testing.T) {
	tlsReq := httptest.NewRequest("GET", "https://example.com/", nil)
	tlsReq.TLS = &tls.ConnectionState{}
	custom := secheaders.Config{
		CSP: secheaders.DefaultCSP().
			Add(secheaders.ImgSrc, "https://cdn.example.com").
			With(secheaders.StyleSrc, secheaders.Self, secheaders.UnsafeInline).
			WithNonce(secheaders.ScriptSrc).
			ReportTo("csp").ReportURI("/csp-report"),
		CSPReportOnly:             true,
		ReportingEndpoints:        `csp="/csp-report"`,
		HSTSMaxAge:                365 * 24 * time.Hour,
		HSTSNoPreload:             true,
		FrameOptions:              "SAMEORIGIN",
		ReferrerPolicy:            "strict-origin-when-cross-origin",
		CrossOriginEmbedderPolicy: "require-corp",
		PermissionsPolicy:         secheaders.Omit,
	}
	for _, tc := range []struct {
		name string
		cfg  secheaders.Config
		req  *http.Request
	}{
		{"default-http", secheaders.Config{}, httptest.NewRequest("GET", "http://example.com/", nil)},
		{"default-https", secheaders.Config{}, tlsReq},
		{"custom-https", custom, tlsReq},
		{"no-csp-no-hsts", secheaders.Config{DisableCSP: true, DisableHSTS: true}, tlsReq},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, _, _ := run(build(t, tc.cfg), tc.req)
			got := dump(hdr)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("headers differ from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func TestDeprecatedHeadersNeverSent(t *testing.T) {
	tlsReq := httptest.NewRequest("GET", "https://example.com/", nil)
	tlsReq.TLS = &tls.ConnectionState{}
	hdr, _, _ := run(build(t, secheaders.Config{}), tlsReq)
	for _, k := range []string{"Expect-Ct", "Feature-Policy", "Public-Key-Pins", "Public-Key-Pins-Report-Only"} {
		if _, ok := hdr[k]; ok {
			t.Errorf("deprecated header %s sent", k)
		}
	}
	if v := hdr.Get("X-XSS-Protection"); v != "0" {
		t.Errorf("X-XSS-Protection = %q, want 0", v)
	}
}

func TestNonce(t *testing.T) {
	h := build(t, secheaders.Config{})
	seen := map[string]bool{}
	for range 1000 {
		hdr, ctxNonce, _ := run(h, httptest.NewRequest("GET", "/", nil))
		csp := hdr.Get("Content-Security-Policy")
		m := nonceRE.FindAllStringSubmatch(csp, -1)
		if len(m) != 2 { // script-src and style-src
			t.Fatalf("CSP has %d nonces: %s", len(m), csp)
		}
		if m[0][1] != m[1][1] || m[0][1] != ctxNonce {
			t.Fatalf("nonce in CSP %q/%q differs from Nonce(ctx) %q", m[0][1], m[1][1], ctxNonce)
		}
		raw, err := base64.StdEncoding.DecodeString(ctxNonce)
		if err != nil || len(raw) != 16 {
			t.Fatalf("nonce %q is not 128 bits of base64 (%v)", ctxNonce, err)
		}
		if seen[ctxNonce] {
			t.Fatalf("nonce %q repeated", ctxNonce)
		}
		seen[ctxNonce] = true
	}
	noNonce := build(t, secheaders.Config{CSP: secheaders.DefaultCSP().WithNonce()})
	hdr, ctxNonce, _ := run(noNonce, httptest.NewRequest("GET", "/", nil))
	if ctxNonce != "" || strings.Contains(hdr.Get("Content-Security-Policy"), "nonce") {
		t.Fatal("nonce present in a policy without nonce directives")
	}
}

func TestHSTSAndRedirect(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := build(t, secheaders.Config{IsHTTPS: secheaders.TrustForwardedProto(trusted), RedirectHTTPS: true})
	for _, tc := range []struct {
		name, remote, proto, url string
		tls                      bool
		status                   int
		location                 string
		hsts                     bool
	}{
		{"TLS", "203.0.113.7:1", "", "https://example.com/a", true, 200, "", true},
		{"plain HTTP redirected", "203.0.113.7:1", "", "http://example.com:8080/a?b=c", false, 308, "https://example.com/a?b=c", false},
		{"trusted proxy says https", "10.0.0.2:1", "https", "http://example.com/a", false, 200, "", true},
		{"untrusted peer claims https", "203.0.113.7:1", "https", "http://example.com/a", false, 308, "https://example.com/a", false},
		{"trusted proxy says http", "10.0.0.2:1", "http", "http://example.com/a", false, 308, "https://example.com/a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.url, nil)
			r.RemoteAddr = tc.remote
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			hdr, _, code := run(h, r)
			if code != tc.status || hdr.Get("Location") != tc.location {
				t.Fatalf("status %d location %q, want %d %q", code, hdr.Get("Location"), tc.status, tc.location)
			}
			if got := hdr.Get("Strict-Transport-Security") != ""; got != tc.hsts {
				t.Fatalf("HSTS sent = %v, want %v", got, tc.hsts)
			}
		})
	}
	bad := httptest.NewRequest("GET", "http://example.com/", nil)
	bad.Host = "evil.com/path"
	if _, _, code := run(h, bad); code != http.StatusBadRequest {
		t.Fatalf("malformed Host: status %d, want 400", code)
	}
}

func TestPerRouteOverride(t *testing.T) {
	base := build(t, secheaders.Config{FrameOptions: "SAMEORIGIN"})
	loose, err := base.With(func(c *secheaders.Config) {
		c.CSP = c.CSP.Add(secheaders.ImgSrc, secheaders.HTTPS)
	})
	if err != nil {
		t.Fatal(err)
	}
	bh, _, _ := run(base, httptest.NewRequest("GET", "/", nil))
	lh, _, _ := run(loose, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(lh.Get("Content-Security-Policy"), "img-src 'self' data: https:") {
		t.Fatalf("override CSP: %s", lh.Get("Content-Security-Policy"))
	}
	if strings.Contains(bh.Get("Content-Security-Policy"), "https:") {
		t.Fatal("override changed the base policy")
	}
	if lh.Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Fatal("override lost the rest of the base config")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]secheaders.Config{
		"source with semicolon": {CSP: secheaders.DefaultCSP().Add(secheaders.ImgSrc, "https://a.com; script-src *")},
		"source with space":     {CSP: secheaders.DefaultCSP().Add(secheaders.ImgSrc, "a.com b.com")},
		"unknown keyword":       {CSP: secheaders.DefaultCSP().Add(secheaders.ScriptSrc, "'unsafe-everything'")},
		"none with others":      {CSP: secheaders.DefaultCSP().Add(secheaders.ObjectSrc, secheaders.Self)},
		"empty directive":       {CSP: secheaders.DefaultCSP().With(secheaders.ImgSrc)},
		"nonce on absent":       {CSP: secheaders.DefaultCSP().WithNonce(secheaders.WorkerSrc)},
		"nonce on none":         {CSP: secheaders.DefaultCSP().WithNonce(secheaders.ObjectSrc)},
		"bad directive":         {CSP: secheaders.DefaultCSP().With("img src", secheaders.Self)},
		"bad report-to":         {CSP: secheaders.DefaultCSP().ReportTo("a b")},
		"bad report-uri":        {CSP: secheaders.DefaultCSP().ReportURI("/r; script-src *")},
		"header injection":      {ReferrerPolicy: "no-referrer\r\nSet-Cookie: x=1"},
		"negative HSTS max-age": {HSTSMaxAge: -1},
	} {
		if _, err := secheaders.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReportHandler(t *testing.T) {
	var logs bytes.Buffer
	h := secheaders.ReportHandler(secheaders.ReportConfig{MaxBytes: 1024, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(ct, body string) int {
		res, err := http.Post(srv.URL, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	legacy := `{"csp-report":{"document-uri":"https://example.com/p","blocked-uri":"https://evil.example/x.js","violated-directive":"script-src"}}`
	modern := `[{"type":"csp-violation","body":{"documentURL":"https://example.com/q","blockedURL":"inline","effectiveDirective":"style-src"}},{"type":"deprecation","body":{}}]`
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"legacy", "application/csp-report", legacy, 204},
		{"reporting API", "application/reports+json", modern, 204},
		{"oversized", "application/csp-report", `{"csp-report":{"document-uri":"` + strings.Repeat("a", 2000) + `"}}`, 413},
		{"malformed", "application/csp-report", `{"csp-report":`, 400},
		{"not a report", "application/csp-report", `{"hello":"world"}`, 400},
		{"wrong type", "text/plain", legacy, 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.ct, tc.body); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	res, _ := http.Get(srv.URL)
	if res.StatusCode != 405 {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	out := logs.String()
	if strings.Count(out, `"msg":"csp violation"`) != 2 || !strings.Contains(out, "evil.example") || !strings.Contains(out, `"directive":"style-src"`) {
		t.Fatalf("logged:\n%s", out)
	}
}

// TestReportHandlerLogsEachViolationOnce: a flood of one violation is
// logged once per LogInterval, distinct ones once each up to MaxDistinct,
// and every report reaches OnViolation.
func TestReportHandlerLogsEachViolationOnce(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var logged, repeated int
	h := secheaders.ReportHandler(secheaders.ReportConfig{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), MaxDistinct: 3, Now: func() time.Time { return now },
		OnViolation: func(_ secheaders.Violation, l bool) {
			if l {
				logged++
			} else {
				repeated++
			}
		},
	})
	post := func(blocked string) {
		body := `{"csp-report":{"document-uri":"https://example.com/","blocked-uri":"` + blocked + `","effective-directive":"img-src"}}`
		req := httptest.NewRequest("POST", "/csp-report", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/csp-report")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 204 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	for range 1000 {
		post("https://a.example/x.png")
	}
	if n := strings.Count(logs.String(), "csp violation"); n != 1 || logged != 1 || repeated != 999 {
		t.Fatalf("one violation 1000 times: %d log lines, %d logged, %d repeated", n, logged, repeated)
	}
	for i := range 10 {
		post(fmt.Sprintf("https://%d.example/x.png", i))
	}
	if n := strings.Count(logs.String(), "csp violation"); n != 3 {
		t.Fatalf("MaxDistinct 3: %d log lines", n)
	}
	now = now.Add(secheaders.DefaultReportLogInterval)
	post("https://a.example/x.png")
	if n := strings.Count(logs.String(), "csp violation"); n != 4 {
		t.Fatalf("after the interval the violation is logged again: %d lines", n)
	}
	post(strings.Repeat("b", 5000))
	for _, l := range strings.Split(logs.String(), "\n") {
		if len(l) > 2000 {
			t.Fatalf("a log line of %d bytes: client strings are not clipped", len(l))
		}
	}

	logs.Reset()
	every := secheaders.ReportHandler(secheaders.ReportConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil)), LogInterval: -1})
	for range 5 {
		req := httptest.NewRequest("POST", "/", strings.NewReader(`{"csp-report":{"document-uri":"https://e/","effective-directive":"img-src"}}`))
		req.Header.Set("Content-Type", "application/csp-report")
		every.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := strings.Count(logs.String(), "csp violation"); n != 5 {
		t.Fatalf("LogInterval -1 logs every report: %d", n)
	}
}

// TestAPIHeaders: API responses get the REST header set: a CSP that loads
// and frames nothing, no nonce, none of the document-only headers, and
// HSTS on HTTPS as everywhere.
func TestAPIHeaders(t *testing.T) {
	direct := build(t, secheaders.Config{API: true})
	derived, err := build(t, secheaders.Config{}).With(func(c *secheaders.Config) { c.API = true })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Strict-Transport-Security":    "max-age=63072000; includeSubDomains; preload",
	}
	for name, h := range map[string]*secheaders.Headers{"API: true": direct, "With API": derived} {
		r := httptest.NewRequest("GET", "https://api.example/x", nil)
		got, _, _ := run(h, r)
		if len(got) != len(want) {
			t.Errorf("%s: %d headers %v, want %d", name, len(got), got, len(want))
		}
		for k, v := range want {
			if got.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got.Get(k), v)
			}
		}
	}
	// Leaving API mode again restores the document policy.
	doc, err := derived.With(func(c *secheaders.Config) { c.API = false })
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := run(doc, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(got.Get("Content-Security-Policy"), "'nonce-") || got.Get("Permissions-Policy") == "" {
		t.Fatalf("back from API mode: %v", got)
	}
}
