package secheaders

import (
	"encoding/json"
	"errors"
	"hash/maphash"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults for ReportConfig.
const (
	DefaultMaxReportBytes    = 16 << 10
	DefaultMaxReports        = 20
	DefaultReportLogInterval = time.Minute
	DefaultMaxDistinct       = 1000
)

// maxLoggedField caps each string of a violation in the log: the fields
// come from the client.
const maxLoggedField = 256

// ReportConfig configures ReportHandler.
type ReportConfig struct {
	// MaxBytes caps the request body; larger bodies get 413.
	// Default DefaultMaxReportBytes (16 KiB).
	MaxBytes int64
	// MaxReports caps the reports logged from one Reporting API batch.
	// Default DefaultMaxReports.
	MaxReports int
	// Logger receives one Warn record per distinct violation per
	// LogInterval. Default slog.Default().
	Logger *slog.Logger
	// LogInterval is how often one distinct violation (same document,
	// blocked URL, directive, source file and line) may be logged: repeats
	// within it are only passed to OnViolation, so one client cannot flood
	// the log. Default DefaultReportLogInterval (1m); negative logs every
	// report.
	LogInterval time.Duration
	// MaxDistinct caps the distinct violations remembered per LogInterval;
	// once reached, further new violations are not logged until the
	// interval ends (memory stays bounded). Default DefaultMaxDistinct (1000).
	MaxDistinct int
	// OnViolation, when set, is called for every violation received, with
	// logged telling whether it was logged, for example to count repeats
	// in a metric.
	OnViolation func(v Violation, logged bool)
	// Now is the clock for LogInterval. Default time.Now.
	Now func() time.Time
}

// reportLog decides which violations are logged: each distinct one at
// most once per interval.
type reportLog struct {
	interval time.Duration
	max      int
	now      func() time.Time
	seed     maphash.Seed

	mu    sync.Mutex
	start time.Time
	seen  map[uint64]struct{}
}

func (l *reportLog) first(v Violation) bool {
	if l.interval < 0 {
		return true
	}
	var h maphash.Hash
	h.SetSeed(l.seed)
	for _, s := range []string{v.DocumentURI, v.BlockedURI, v.EffectiveDirective, v.Disposition, v.SourceFile, strconv.Itoa(v.LineNumber)} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	key := h.Sum64()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.interval || now.Before(l.start) {
		l.start, l.seen = now, make(map[uint64]struct{})
	}
	if _, ok := l.seen[key]; ok || len(l.seen) >= l.max {
		return false
	}
	l.seen[key] = struct{}{}
	return true
}

func clip(s string) string {
	if len(s) <= maxLoggedField {
		return s
	}
	return s[:maxLoggedField] + "…"
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
// (application/reports+json), and logs each distinct violation at most once
// per LogInterval. It answers 204,
// 405 for a method other than POST, 413 for a body over MaxBytes, 415 for
// another content type and 400 for malformed JSON.
func ReportHandler(cfg ReportConfig) http.Handler {
	cfg = cfg.withDefaults()
	logs := &reportLog{interval: cfg.LogInterval, max: cfg.MaxDistinct, now: cfg.Now, seed: maphash.MakeSeed()}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		violations, status := readReports(w, r, cfg)
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		for _, v := range violations {
			logged := logs.first(v)
			if logged {
				cfg.Logger.WarnContext(r.Context(), "csp violation",
					"document", clip(v.DocumentURI), "blocked", clip(v.BlockedURI), "directive", clip(v.EffectiveDirective),
					"disposition", clip(v.Disposition), "source", clip(v.SourceFile), "line", v.LineNumber)
			}
			if cfg.OnViolation != nil {
				cfg.OnViolation(v, logged)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (cfg ReportConfig) withDefaults() ReportConfig {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxReportBytes
	}
	if cfg.MaxReports <= 0 {
		cfg.MaxReports = DefaultMaxReports
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = DefaultReportLogInterval
	}
	if cfg.MaxDistinct <= 0 {
		cfg.MaxDistinct = DefaultMaxDistinct
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// readReports decodes the body in either report format. A non-zero status
// is the error answer: 415 for another content type, 413 for a body over
// MaxBytes, 400 for anything malformed.
func readReports(w http.ResponseWriter, r *http.Request, cfg ReportConfig) ([]Violation, int) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, cfg.MaxBytes))
	var violations []Violation
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
		return nil, http.StatusUnsupportedMediaType
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge
	case err != nil:
		return nil, http.StatusBadRequest
	}
	return violations, 0
}
