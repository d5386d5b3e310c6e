package secheaders

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
)

// Defaults for ReportConfig.
const (
	DefaultMaxReportBytes = 16 << 10
	DefaultMaxReports     = 20
)

// ReportConfig configures ReportHandler.
type ReportConfig struct {
	// MaxBytes caps the request body; larger bodies get 413.
	// Default DefaultMaxReportBytes (16 KiB).
	MaxBytes int64
	// MaxReports caps the reports logged from one Reporting API batch.
	// Default DefaultMaxReports.
	MaxReports int
	// Logger receives one Warn record per violation. Default slog.Default().
	Logger *slog.Logger
}

// Violation is the part of a CSP violation report that is logged.
type Violation struct {
	DocumentURI        string `json:"documentURL"`
	BlockedURI         string `json:"blockedURL"`
	EffectiveDirective string `json:"effectiveDirective"`
	Disposition        string `json:"disposition"`
	SourceFile         string `json:"sourceFile"`
	LineNumber         int    `json:"lineNumber"`
}

// legacyReport is the report-uri format (application/csp-report).
type legacyReport struct {
	Body struct {
		DocumentURI        string `json:"document-uri"`
		BlockedURI         string `json:"blocked-uri"`
		ViolatedDirective  string `json:"violated-directive"`
		EffectiveDirective string `json:"effective-directive"`
		Disposition        string `json:"disposition"`
		SourceFile         string `json:"source-file"`
		LineNumber         int    `json:"line-number"`
	} `json:"csp-report"`
}

// ReportHandler accepts CSP violation reports, both the legacy report-uri
// format (application/csp-report) and the Reporting API
// (application/reports+json), and logs each violation. It answers 204,
// 405 for a method other than POST, 413 for a body over MaxBytes, 415 for
// another content type and 400 for malformed JSON.
func ReportHandler(cfg ReportConfig) http.Handler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxReportBytes
	}
	if cfg.MaxReports <= 0 {
		cfg.MaxReports = DefaultMaxReports
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		var violations []Violation
		body := http.MaxBytesReader(w, r.Body, cfg.MaxBytes)
		dec := json.NewDecoder(body)
		var err error
		switch mt {
		case "application/csp-report", "application/json":
			var rep legacyReport
			if err = dec.Decode(&rep); err == nil && rep.Body.DocumentURI == "" && rep.Body.EffectiveDirective == "" && rep.Body.ViolatedDirective == "" {
				err = errors.New("not a csp-report")
			}
			if err == nil {
				b := rep.Body
				eff := b.EffectiveDirective
				if eff == "" {
					eff = b.ViolatedDirective
				}
				violations = []Violation{{b.DocumentURI, b.BlockedURI, eff, b.Disposition, b.SourceFile, b.LineNumber}}
			}
		case "application/reports+json":
			var reps []struct {
				Type string    `json:"type"`
				Body Violation `json:"body"`
			}
			if err = dec.Decode(&reps); err == nil {
				for _, rep := range reps {
					if rep.Type == "csp-violation" && len(violations) < cfg.MaxReports {
						violations = append(violations, rep.Body)
					}
				}
			}
		default:
			http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
			return
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "report too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "malformed report", http.StatusBadRequest)
			return
		}
		for _, v := range violations {
			cfg.Logger.WarnContext(r.Context(), "csp violation",
				"document", v.DocumentURI, "blocked", v.BlockedURI, "directive", v.EffectiveDirective,
				"disposition", v.Disposition, "source", v.SourceFile, "line", v.LineNumber)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
