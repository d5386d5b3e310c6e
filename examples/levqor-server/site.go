package main

import (
	"bytes"
	"embed"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/levqor/levqor/internal/httpx"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/sitemap"
)

//go:embed templates/*.html
var templates embed.FS

type testimonial struct{ Quote, Name, Role string }

var testimonials = []testimonial{
	{"We replaced five half-configured libraries with Levqor and finally passed our security review.", "Priya N.", "CTO, a bookkeeping SaaS"},
	{"The spend guard paused billing at 3 a.m. before a runaway job cost us a month of revenue.", "Marco D.", "Founder, an AI writing tool"},
	{"Partner payouts used to be a spreadsheet and a prayer. Now they are exactly once, every time.", "Lena K.", "Head of Ops, a marketplace"},
}

func (a *app) landing() (http.Handler, error) {
	return a.page("index.html", func(*http.Request) map[string]any {
		return map[string]any{"Testimonials": testimonials}
	})
}

// Where Stripe sends a partner back from Connect onboarding: the return
// URL after they leave or finish, the refresh URL when the link expired or
// was used already (it works once, for minutes).
const (
	onboardingReturnPath  = "/partners/onboarding"
	onboardingRefreshPath = "/partners/onboarding?expired=1"
)

// onboardingPage is GET /partners/onboarding. The browser Stripe sends
// back carries no access token, so the page cannot make a new link itself
// (a link lets its holder enter the bank account payouts go to); it says
// what happened and that the partner's app asks for a new link with
// POST /api/partners/onboarding.
func (a *app) onboardingPage() (http.Handler, error) {
	return a.page("onboarding.html", func(r *http.Request) map[string]any {
		return map[string]any{"Expired": r.URL.Query().Get("expired") != ""}
	})
}

// page serves templates/name, executed with data(r) and the response's
// CSP nonce.
func (a *app) page(name string, data func(*http.Request) map[string]any) (http.Handler, error) {
	tmpl, err := template.ParseFS(templates, "templates/"+name, "templates/theme.html")
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := data(r)
		d["Nonce"] = secheaders.Nonce(r.Context())
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, d); err != nil {
			a.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // the nonce changes every time
		_, _ = w.Write(buf.Bytes())
	}), nil
}

// publicPage is a page search engines may index.
type publicPage struct {
	Path    string
	Updated time.Time // when its content last changed: the sitemap's <lastmod>
}

// publicPages is the one list of public pages: /sitemap.xml, robots.txt
// and `sitemap submit` all read it. Update a page's date when its content
// changes.
var publicPages = []publicPage{
	{Path: "/", Updated: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
}

// publicURLs is publicPages as absolute sitemap entries under base.
func publicURLs(base string) []sitemap.URL {
	urls := make([]sitemap.URL, len(publicPages))
	for i, p := range publicPages {
		urls[i] = sitemap.URL{Loc: base + p.Path, LastMod: p.Updated}
	}
	return urls
}

// sitemap lists the public pages with absolute URLs built only from the
// configured public origin, never from the request's Host header.
func (a *app) sitemap(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := sitemap.Write(&buf, publicURLs(a.baseURL)); err != nil {
		a.log.ErrorContext(r.Context(), "sitemap", "err", err)
		writeError(w, http.StatusInternalServerError, "sitemap unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// robots allows the public pages, keeps crawlers out of the API, and
// names the sitemap.
func (a *app) robots(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "User-agent: *\nAllow: /\nDisallow: /api/\nDisallow: /webhooks/\n\nSitemap: "+a.baseURL+"/sitemap.xml\n")
}

// indexNowKeyFile serves the IndexNow key at /<key>.txt, proving to
// search engines that submissions for this host come from its owner.
func (a *app) indexNowKeyFile(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, a.cfg.IndexNowKey)
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
