package secheaders_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/levqor/levqor/secheaders"
)

// FuzzReportHandler: any body, in either report format, gets 204, 400 or
// 413, never a panic.
func FuzzReportHandler(f *testing.F) {
	f.Add(`{"csp-report":{"document-uri":"https://a","violated-directive":"script-src"}}`, false)
	f.Add(`[{"type":"csp-violation","body":{"documentURL":"https://a","effectiveDirective":"img-src"}}]`, true)
	f.Add(`{"csp-report":null}`, false)
	f.Add(`[`, true)
	h := secheaders.ReportHandler(secheaders.ReportConfig{MaxBytes: 2048, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, body string, reportingAPI bool) {
		ct := "application/csp-report"
		if reportingAPI {
			ct = "application/reports+json"
		}
		r := httptest.NewRequest("POST", "/csp-report", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 204, 400, 413:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
