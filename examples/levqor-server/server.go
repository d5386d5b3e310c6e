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
	"github.com/levqor/levqor/anomaly"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/internal/httpx"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/tokens"
)

// maxBody caps JSON request bodies.
const maxBody = 16 << 10

// routes builds the whole handler: every response gets the security
// headers, metrics, SLO tracking and panic recovery; /api/auth/* is rate
// limited per client IP (LEVQOR_AUTH_RATE_LIMIT) whatever token it carries,
// the rest of /api/ by the authenticated subject or the client IP.
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
	if a.cfg.OpsAddr == "" {
		mux.Handle("GET /metrics", a.metrics.handler)
	}
	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler(a.keys))
	reports, err := a.cspReports()
	if err != nil {
		return nil, err
	}
	mux.Handle("POST /csp-report", reports)
	page, err := a.landing()
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /{$}", page)
	mux.HandleFunc("GET /sitemap.xml", a.sitemap)

	byIP := ratelimit.KeyByIP(a.clientIP)
	rl, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter: countingLimiter{a.limiter, a.metrics},
		KeyFunc: ratelimit.KeyBySubject(tokens.SubjectFromContext, byIP),
		Logger:  a.log,
	})
	if err != nil {
		return nil, err
	}
	authRL, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter:    countingLimiter{a.authLim, a.metrics},
		KeyFunc:    byIP,
		PolicyName: "auth",
		Logger:     a.log,
	})
	if err != nil {
		return nil, err
	}
	routed := recordRoute(mux)
	api := a.identify(rl(routed))
	authAPI := a.identify(authRL(routed))
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/auth/"):
			authAPI.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			api.ServeHTTP(w, r)
		default:
			routed.ServeHTTP(w, r)
		}
	})
	return a.headers.Handler(a.closeWhileDraining(a.observe(a.recoverPanics(methodNotAllowedJSON(root))))), nil
}

// cspReports is /csp-report: limited per client IP, and each distinct
// violation logged at most once a minute (the rest only counted).
func (a *app) cspReports() (http.Handler, error) {
	reports := secheaders.ReportHandler(secheaders.ReportConfig{
		Logger: a.log,
		OnViolation: func(_ secheaders.Violation, logged bool) {
			if logged {
				a.metrics.cspReports.WithLabelValues("logged").Inc()
			} else {
				a.metrics.cspReports.WithLabelValues("repeated").Inc()
			}
		},
	})
	limited, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter: a.cspLim, KeyFunc: ratelimit.KeyByIP(a.clientIP), PolicyName: "csp", FailOpen: true, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	h := limited(reports)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httpx.NewStatusRecorder(w)
		h.ServeHTTP(rec, r)
		if rec.Status() == http.StatusTooManyRequests {
			a.metrics.cspReports.WithLabelValues("limited").Inc()
		}
	}), nil
}

// closeWhileDraining asks clients to close their connection once shutdown
// has begun, so keep-alive connections end after their current request
// instead of being cut while a request is on the wire.
func (a *app) closeWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
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

// authResult is identify's verdict on a request's bearer token, kept so
// the token is verified (and the revocation store asked) once per request.
type authResult struct {
	claims *tokens.Claims
	err    error
}

type authResultKey struct{}

// identify verifies a bearer token once, puts its claims in the context
// (for rate-limit keys and handlers) and refuses nothing: protected routes
// refuse through requireAuth, which reuses the verdict.
func (a *app) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			c, err := a.tokens.Verify(r.Context(), strings.TrimSpace(h[7:]))
			ctx := context.WithValue(r.Context(), authResultKey{}, &authResult{c, err})
			if err == nil {
				ctx = tokens.NewContext(ctx, c)
			}
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// requireAuth answers exactly as tokens.RequireAuth (401 with a Bearer
// challenge, 503 when the store failed) using identify's verdict.
func (a *app) requireAuth(next http.Handler) http.Handler {
	return tokens.RequireAuth(verdictVerifier{a.tokens})(next)
}

// verdictVerifier returns identify's verdict for the request, verifying
// only when identify did not run.
type verdictVerifier struct{ m *tokens.Manager }

func (v verdictVerifier) Verify(ctx context.Context, token string) (*tokens.Claims, error) {
	if res, ok := ctx.Value(authResultKey{}).(*authResult); ok {
		return res.claims, res.err
	}
	return v.m.Verify(ctx, token)
}

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
// The SLI covers the API's own work: API routes only, and the time spent
// waiting for the client to upload its body is not counted, so a slow
// client cannot burn the error budget.
func (a *app) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := httpx.NewStatusRecorder(w)
		route := new(string)
		body := &timedBody{ReadCloser: r.Body}
		r.Body = body
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, route))
		defer func() {
			d := time.Since(start)
			status := rec.Status()
			route := *route
			if route == "" {
				route = "unmatched"
			}
			a.metrics.observe(route, r.Method, status, d)
			if !isAPIRoute(route) {
				return
			}
			serve := max(0, d-body.waited)
			a.tracker.Observe(serve, status < 500 && serve <= a.cfg.SLOLatency)
			if res := a.latency.Observe(float64(serve) / float64(time.Millisecond)); res.Anomaly {
				a.metrics.anomalies.Inc()
				if res.Grade == anomaly.High {
					_ = a.alerts.Notify(context.Background(), alert.Alert{
						Severity: alert.SeverityWarning, Title: "Latency spike on " + route, Key: "latency|" + route,
						Fields: []alert.Field{{Key: "Latency", Value: serve.Round(time.Millisecond).String()}, {Key: "Baseline", Value: fmt.Sprintf("%.1fms ± %.1f", res.Mean, res.StdDev)}},
					})
				}
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// isAPIRoute reports whether a mux pattern ("POST /api/auth/login") is an
// API route, the scope of the SLO.
func isAPIRoute(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/")
}

// timedBody sums the time a handler spends blocked reading the request
// body, which depends on the client, not on the server.
type timedBody struct {
	io.ReadCloser
	waited time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	t := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.waited += time.Since(t)
	return n, err
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
			route := "unmatched"
			if h, ok := r.Context().Value(routeKey{}).(*string); ok && *h != "" {
				route = *h
			}
			a.log.ErrorContext(r.Context(), "panic in handler", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			// The alert key is the route pattern, never the raw path: a
			// client must not be able to mint de-duplication keys.
			_ = a.alerts.Notify(context.Background(), alert.Alert{Severity: alert.SeverityCritical, Title: "Handler panic on " + route, Message: fmt.Sprint(v), Key: "panic|" + route})
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

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

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

// ready answers 503 while shutting down or when a dependency is down. The
// answer names the failing check but never its error (which may hold
// addresses or paths); the detail goes to the log.
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	check := func(name string, err error) {
		if err != nil {
			a.log.WarnContext(r.Context(), "readiness check failed", "check", name, "err", err)
			checks[name], status = "unavailable", http.StatusServiceUnavailable
			return
		}
		checks[name] = "ok"
	}
	check("database", a.db.PingContext(ctx))
	if a.rdb != nil {
		check("redis", a.rdb.Ping(ctx).Err())
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}
