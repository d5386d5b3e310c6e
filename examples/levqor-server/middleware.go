package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/anomaly"
	"github.com/levqor/levqor/internal/httpx"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/tokens"
)

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
	allowed, limited, failed prometheus.Counter // resolved once: not per decision
}

func newCountingLimiter(l ratelimit.Limiter, m *metrics) *countingLimiter {
	return &countingLimiter{l, m.rateLimit.WithLabelValues("allowed"), m.rateLimit.WithLabelValues("limited"), m.rateLimit.WithLabelValues("error")}
}

func (c *countingLimiter) Allow(ctx context.Context, key string) (ratelimit.Result, error) {
	res, err := c.Limiter.Allow(ctx, key)
	switch {
	case err != nil:
		c.failed.Inc()
	case res.Allowed:
		c.allowed.Inc()
	default:
		c.limited.Inc()
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

// errForgeries: the token was not verified, its client having sent too
// many forged ones (identify).
var errForgeries = errors.New("too many forged tokens from this address")

// identify verifies a bearer token once, puts its claims in the context
// (for rate-limit keys and handlers) and refuses nothing: protected routes
// refuse through requireAuth, which reuses the verdict. A client IP that
// sent more forged tokens than forgeryRate has its tokens checked only if
// they were verified or issued before (a forged one is refused without
// signature work) until the rate allows it again.
func (a *app) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			token := strings.TrimSpace(h[7:])
			if a.forgeries.active() && a.forgeries.blocked(a.clientIP.Key(r)) && !a.tokens.Cached(token) {
				r = r.WithContext(context.WithValue(r.Context(), authResultKey{}, &authResult{nil, errForgeries}))
				next.ServeHTTP(w, r)
				return
			}
			c, err := a.tokens.Verify(r.Context(), token)
			if errors.Is(err, tokens.ErrSignature) {
				if ip := a.clientIP.Key(r); a.forgeries.forged(r.Context(), ip) {
					a.forgeryLog.Log(r.Context(), slog.LevelWarn, "forged tokens: an address's new tokens go unverified for a while",
						"client", ip, "limit", forgeryRate.Limit, "per", forgeryRate.Period)
				}
			}
			// Verified claims in the context are the verdict RequireAuth
			// reads first; only a refusal needs its own value.
			if err == nil {
				r = r.WithContext(tokens.NewContext(r.Context(), c))
			} else {
				r = r.WithContext(context.WithValue(r.Context(), authResultKey{}, &authResult{c, err}))
			}
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

// recordRoute reports the mux pattern that served a request to observe,
// through observe's writer (middleware in between copies requests, so the
// request the mux fills in is not the one observe holds).
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if o := observationOf(w); o != nil {
			o.route = r.Pattern
		}
	})
}

// observation is observe's per-request state in one allocation: the
// status recorder handed down the chain, the route the mux chose and the
// request body's timer.
type observation struct {
	httpx.StatusRecorder
	route string
	body  timedBody
}

// observationOf finds observe's writer under w's wrappers; nil outside
// observe.
func observationOf(w http.ResponseWriter) *observation {
	for {
		switch x := w.(type) {
		case *observation:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

// observe feeds metrics, the SLO tracker and the latency anomaly detector.
// The SLI covers the API's own work: API routes only, and the time spent
// waiting for the client to upload its body is not counted, so a slow
// client cannot burn the error budget.
func (a *app) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &observation{StatusRecorder: httpx.StatusRecorder{ResponseWriter: w}}
		o.body.ReadCloser = r.Body
		r.Body = &o.body
		defer func() {
			end := time.Now()
			d := end.Sub(start)
			status := o.Status()
			route := o.route
			if route == "" {
				route = "unmatched"
			}
			a.metrics.observe(route, r.Method, status, d)
			if !isAPIRoute(route) {
				return
			}
			serve := max(0, d-o.body.waited)
			a.tracker.ObserveAt(end, serve, status < 500 && serve <= a.cfg.SLOLatency)
			a.availability.RecordAt(end, status < 500)
			res := a.latency.observe(route, serve)
			a.series.observe(start, serve, res.Anomaly)
			if res.Anomaly {
				a.metrics.anomalies.Inc()
				if res.Grade == anomaly.High {
					_ = a.notify.Notify(context.Background(), alert.Alert{
						Severity: alert.SeverityWarning, Title: "Latency spike on " + route, Key: "latency|" + route,
						Fields: []alert.Field{{Key: "Latency", Value: serve.Round(time.Millisecond).String()}, {Key: "Baseline", Value: fmt.Sprintf("%.2fms ± %.2f", res.Mean, res.StdDev)}},
					})
				}
			}
		}()
		next.ServeHTTP(o, r)
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
			if o := observationOf(w); o != nil && o.route != "" {
				route = o.route
			}
			a.log.ErrorContext(r.Context(), "panic in handler", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			// The alert key is the route pattern, never the raw path: a
			// client must not be able to mint de-duplication keys.
			_ = a.notify.Notify(context.Background(), alert.Alert{Severity: alert.SeverityCritical, Title: "Handler panic on " + route, Message: fmt.Sprint(v), Key: "panic|" + route})
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
