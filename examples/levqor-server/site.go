package main

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"

	"github.com/levqor/levqor/internal/httpx"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
)

//go:embed templates/index.html
var templates embed.FS

type testimonial struct{ Quote, Name, Role string }

var testimonials = []testimonial{
	{"We replaced five half-configured libraries with Levqor and finally passed our security review.", "Priya N.", "CTO, a bookkeeping SaaS"},
	{"The spend guard paused billing at 3 a.m. before a runaway job cost us a month of revenue.", "Marco D.", "Founder, an AI writing tool"},
	{"Partner payouts used to be a spreadsheet and a prayer. Now they are exactly once, every time.", "Lena K.", "Head of Ops, a marketplace"},
}

func (a *app) landing() (http.Handler, error) {
	tmpl, err := template.ParseFS(templates, "templates/index.html")
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, map[string]any{"Nonce": secheaders.Nonce(r.Context()), "Testimonials": testimonials}); err != nil {
			a.log.ErrorContext(r.Context(), "render landing page", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // the nonce changes every time
		_, _ = w.Write(buf.Bytes())
	}), nil
}

// sitemap lists the public pages with absolute URLs built only from the
// configured public origin (LEVQOR_PUBLIC_URL), never from the request's
// Host or forwarded headers, which any client can set.
func (a *app) sitemap(w http.ResponseWriter, r *http.Request) {
	base := a.baseURL
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n")
	for _, p := range []string{"/"} {
		buf.WriteString("  <url><loc>")
		template.HTMLEscape(&buf, []byte(base+p))
		buf.WriteString("</loc></url>\n")
	}
	buf.WriteString("</urlset>\n")
	_, _ = w.Write(buf.Bytes())
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
