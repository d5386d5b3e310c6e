package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/tokens"
)

// maxBody caps JSON request bodies.
const maxBody = 16 << 10

// routes builds the whole handler: every response gets the security
// headers, metrics, SLO tracking and panic recovery; /api/ adds rate
// limiting keyed by the authenticated subject or the client IP.
func (a *app) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	auth := a.requireAuth

	mux.HandleFunc("POST /api/auth/register", a.register)
	mux.HandleFunc("POST /api/auth/login", a.login)
	mux.HandleFunc("POST /api/auth/refresh", a.refresh)
	mux.Handle("POST /api/auth/logout", auth(http.HandlerFunc(a.logout)))
	mux.Handle("GET /api/me", auth(http.HandlerFunc(a.me)))

	userDSAR := http.StripPrefix("/api/user", a.dsar.Handler(dsar.HandlerConfig{
		Subject: func(r *http.Request) (string, bool) {
			c, ok := tokens.FromContext(r.Context())
			if !ok {
				return "", false
			}
			return c.Subject, true
		},
		Aliases: func(ctx context.Context, subject string) []string {
			var email string
			_ = a.db.QueryRowContext(ctx, `SELECT email FROM users WHERE id = ?`, subject).Scan(&email)
			return []string{email}
		},
		MaxBody:  maxBody,
		Filename: "levqor-personal-data.json",
	}))
	mux.Handle("POST /api/user/export", auth(userDSAR))
	mux.Handle("GET /api/user/export/summary", auth(userDSAR))
	mux.Handle("DELETE /api/user", auth(http.HandlerFunc(a.deleteUser)))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", a.metrics.handler)
	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler(a.keys))
	reports := secheaders.ReportHandler(secheaders.ReportConfig{Logger: a.log})
	mux.Handle("POST /csp-report", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.metrics.cspReports.Inc()
		reports.ServeHTTP(w, r)
	}))
	page, err := a.landing()
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /{$}", page)
	mux.HandleFunc("GET /sitemap.xml", a.sitemap)

	rl, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter: countingLimiter{a.limiter, a.metrics},
		KeyFunc: ratelimit.KeyBySubject(tokens.SubjectFromContext, ratelimit.KeyByIP(a.clientIP)),
		Logger:  a.log,
	})
	if err != nil {
		return nil, err
	}
	routed := recordRoute(mux)
	api := a.identify(rl(routed))
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			api.ServeHTTP(w, r)
			return
		}
		routed.ServeHTTP(w, r)
	})
	return a.headers.Handler(a.observe(a.recoverPanics(methodNotAllowedJSON(root)))), nil
}

// countingLimiter counts decisions for /metrics.
type countingLimiter struct {
	ratelimit.Limiter
	m *metrics
}

func (c countingLimiter) Allow(ctx context.Context, key string) (ratelimit.Result, error) {
	res, err := c.Limiter.Allow(ctx, key)
	switch {
	case err != nil:
		c.m.rateLimit.WithLabelValues("error").Inc()
	case res.Allowed:
		c.m.rateLimit.WithLabelValues("allowed").Inc()
	default:
		c.m.rateLimit.WithLabelValues("limited").Inc()
	}
	return res, err
}

// identify puts the claims of a valid bearer token in the context (for
// rate-limit keys and handlers) without refusing anything; protected
// routes refuse through requireAuth.
func (a *app) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			if c, err := a.tokens.Verify(r.Context(), strings.TrimSpace(h[7:])); err == nil {
				r = r.WithContext(tokens.NewContext(r.Context(), c))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireAuth admits requests identify authenticated; others go through
// tokens.RequireAuth for the exact 401/503 answer.
func (a *app) requireAuth(next http.Handler) http.Handler {
	strict := tokens.RequireAuth(a.tokens)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tokens.FromContext(r.Context()); ok {
			next.ServeHTTP(w, r)
			return
		}
		strict.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type routeKey struct{}

// recordRoute reports the mux pattern that served a request to observe,
// through a holder in the context (middleware in between copies requests).
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if h, ok := r.Context().Value(routeKey{}).(*string); ok {
			*h = r.Pattern
		}
	})
}

// observe feeds metrics, the SLO tracker and the latency anomaly detector.
func (a *app) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		route := new(string)
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, route))
		defer func() {
			d := time.Since(start)
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			route := *route
			if route == "" {
				route = "unmatched"
			}
			a.metrics.observe(route, r.Method, rec.status, d)
			a.tracker.Observe(d, rec.status < 500 && d <= a.cfg.SLOLatency)
			if res := a.latency.Observe(float64(d) / float64(time.Millisecond)); res.Anomaly {
				a.metrics.anomalies.Inc()
				if res.Severity >= 3 { // High
					_ = a.alerts.Notify(context.Background(), alert.Alert{
						Severity: alert.SeverityWarning, Title: "Latency spike on " + route, Key: "latency|" + route,
						Fields: []alert.Field{{Key: "Latency", Value: d.Round(time.Millisecond).String()}, {Key: "Baseline", Value: fmt.Sprintf("%.1fms ± %.1f", res.Mean, res.StdDev)}},
					})
				}
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recoverPanics turns a handler panic into a 500 and an alert.
func (a *app) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // deliberate abort of a streamed response
			}
			a.metrics.panics.Inc()
			a.log.ErrorContext(r.Context(), "panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			_ = a.alerts.Notify(context.Background(), alert.Alert{Severity: alert.SeverityCritical, Title: "Handler panic on " + r.URL.Path, Message: fmt.Sprint(v), Key: "panic|" + r.URL.Path})
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowedJSON rewrites the mux's plain-text 404 and 405 (which
// carries the Allow header) into the JSON error shape.
func methodNotAllowedJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&jsonErrorWriter{ResponseWriter: w}, r)
	})
}

type jsonErrorWriter struct {
	http.ResponseWriter
	swallow bool
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	if (code == http.StatusMethodNotAllowed || code == http.StatusNotFound) && strings.HasPrefix(j.Header().Get("Content-Type"), "text/plain") {
		j.swallow = true
		msg := "method not allowed"
		if code == http.StatusNotFound {
			msg = "not found"
		}
		writeError(j.ResponseWriter, code, msg)
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if j.swallow {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}

func (j *jsonErrorWriter) Unwrap() http.ResponseWriter { return j.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON body strictly: size-limited (413), unknown fields
// rejected (400), one object only.
func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "request body must be a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid JSON: more than one value")
		return false
	}
	return true
}

func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	if err := a.db.PingContext(ctx); err != nil {
		checks["database"], status = err.Error(), http.StatusServiceUnavailable
	} else {
		checks["database"] = "ok"
	}
	if a.rdb != nil {
		if err := a.rdb.Ping(ctx).Err(); err != nil {
			checks["redis"], status = err.Error(), http.StatusServiceUnavailable
		} else {
			checks["redis"] = "ok"
		}
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}
