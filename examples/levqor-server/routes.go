package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/levqor/levqor/dsar"
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
	a.apiRoutes(mux)
	if err := a.siteRoutes(mux); err != nil {
		return nil, err
	}
	byIP := ratelimit.KeyByIP(a.clientIP)
	rl, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter: newCountingLimiter(a.limiter, a.metrics),
		KeyFunc: ratelimit.KeyBySubject(tokens.SubjectFromContext, byIP),
		Logger:  a.log,
		// The IETF RateLimit fields carry the same: fewer bytes per response.
		OmitLegacyHeaders: true,
	})
	if err != nil {
		return nil, err
	}
	authRL, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter:           newCountingLimiter(a.authLim, a.metrics),
		KeyFunc:           byIP,
		PolicyName:        "auth",
		Logger:            a.log,
		OmitLegacyHeaders: true,
	})
	if err != nil {
		return nil, err
	}
	routed := recordRoute(mux)
	api := a.withDeadline(a.identify(rl(routed)))
	authAPI := a.withDeadline(a.identify(authRL(routed)))
	webhooks := a.withDeadline(routed)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/auth/"):
			authAPI.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			api.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/webhooks/"):
			webhooks.ServeHTTP(w, r)
		default:
			routed.ServeHTTP(w, r)
		}
	})
	inner := a.closeWhileDraining(a.observe(a.recoverPanics(methodNotAllowedJSON(root))))
	apiHeaders, err := a.headers.With(func(c *secheaders.Config) { c.API, c.CSP = true, secheaders.APICSP() })
	if err != nil {
		return nil, err
	}
	pages, data := a.headers.Handler(inner), apiHeaders.Handler(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isDataPath(r.URL.Path) {
			data.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	}), nil
}

// isDataPath tells the paths that answer data (JSON, XML), never a
// document: they get the API security headers (a CSP that loads and frames
// nothing, no nonce, no document-only headers); every other path gets the
// full document set.
func isDataPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics", "/csp-report", "/sitemap.xml", "/robots.txt":
		return true
	}
	if strings.HasSuffix(p, ".txt") && !strings.Contains(p[1:], "/") {
		return true // the IndexNow key file
	}
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/.well-known/") || strings.HasPrefix(p, "/webhooks/")
}

// apiRoutes registers /api/: authentication, the account, and the
// subject's own DSAR export.
func (a *app) apiRoutes(mux *http.ServeMux) {
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
	mux.Handle("POST /api/user/export", auth(a.exports.handler(userDSAR)))
	mux.Handle("GET /api/user/export/summary", auth(userDSAR))
	mux.Handle("DELETE /api/user", auth(http.HandlerFunc(a.deleteUser)))
	mux.Handle("POST /api/partners", auth(http.HandlerFunc(a.becomePartner)))
	mux.Handle("GET /api/partners/me", auth(http.HandlerFunc(a.partnerMe)))
	mux.Handle("POST /api/partners/onboarding", auth(http.HandlerFunc(a.partnerOnboarding)))
	mux.HandleFunc("POST /webhooks/stripe", a.stripeWebhook)
}

// siteRoutes registers health, metrics (unless on the ops listener),
// keys, CSP reports and the public pages.
func (a *app) siteRoutes(mux *http.ServeMux) error {
	healthy := []byte(`{"status":"ok"}` + "\n")
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeBody(w, healthy) })
	mux.HandleFunc("GET /readyz", a.ready)
	if a.cfg.OpsAddr == "" {
		mux.Handle("GET /metrics", a.metrics.handler)
	}
	mux.Handle("GET /.well-known/jwks.json", tokens.JWKSHandler(a.keys))
	reports, err := a.cspReports()
	if err != nil {
		return err
	}
	mux.Handle("POST /csp-report", reports)
	page, err := a.landing()
	if err != nil {
		return err
	}
	mux.Handle("GET /{$}", page)
	onboarding, err := a.onboardingPage()
	if err != nil {
		return err
	}
	mux.Handle("GET "+onboardingReturnPath, onboarding)
	mux.HandleFunc("GET /sitemap.xml", a.sitemap)
	mux.HandleFunc("GET /robots.txt", a.robots)
	if a.cfg.IndexNowKey != "" {
		mux.HandleFunc("GET /"+a.cfg.IndexNowKey+".txt", a.indexNowKeyFile)
	}
	return nil
}

// ready answers 503 while shutting down or when a dependency is down. The
// answer names the failing check but never its error (which may hold
// addresses or paths); the detail goes to the log, at most once per
// clientLogInterval per check, however often clients ask.
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
			a.readyLog[name].Log(r.Context(), slog.LevelWarn, "readiness check failed", "check", name, "err", err)
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
