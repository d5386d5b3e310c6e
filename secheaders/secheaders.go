package secheaders

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Omit, as the value of a string header field in Config, means "do not send
// this header"; the empty string means "send the default".
const Omit = "-"

// Defaults for Config's string fields.
const (
	DefaultFrameOptions              = "DENY"
	DefaultReferrerPolicy            = "no-referrer"
	DefaultCrossOriginOpenerPolicy   = "same-origin"
	DefaultCrossOriginResourcePolicy = "same-origin"
	// DefaultPermissionsPolicy denies every powerful feature except
	// fullscreen and WebAuthn for the page's own origin.
	DefaultPermissionsPolicy = "accelerometer=(), autoplay=(), camera=(), display-capture=(), " +
		"encrypted-media=(), fullscreen=(self), geolocation=(), gyroscope=(), hid=(), " +
		"idle-detection=(), magnetometer=(), microphone=(), midi=(), payment=(), " +
		"picture-in-picture=(), publickey-credentials-get=(self), screen-wake-lock=(), " +
		"serial=(), usb=(), web-share=(), xr-spatial-tracking=()"
	DefaultHSTSMaxAge = 2 * 365 * 24 * time.Hour // 63072000 seconds
)

// Config configures the security headers. The zero Config is the secure
// default: every header listed below is sent with its default value.
type Config struct {
	// CSP is the Content-Security-Policy. Default DefaultCSP() (when the
	// zero CSP{} is given). Set DisableCSP to send none.
	CSP        CSP
	DisableCSP bool
	// CSPReportOnly sends the policy as Content-Security-Policy-Report-Only:
	// violations are reported, nothing is blocked. Default false.
	CSPReportOnly bool
	// ReportingEndpoints is sent verbatim as the Reporting-Endpoints header
	// (e.g. `csp="/csp-report"`), naming the groups CSP report-to refers to.
	// Default: not sent.
	ReportingEndpoints string

	// HSTS: Strict-Transport-Security, sent only on HTTPS requests (RFC 6797
	// §7.2). HSTSMaxAge defaults to DefaultHSTSMaxAge (2 years); includeSubDomains
	// and preload are on unless HSTSNoSubdomains / HSTSNoPreload. DisableHSTS
	// sends none.
	HSTSMaxAge       time.Duration
	HSTSNoSubdomains bool
	HSTSNoPreload    bool
	DisableHSTS      bool
	// IsHTTPS reports whether the client reached us over HTTPS. Default:
	// r.TLS != nil. Behind a TLS-terminating proxy use TrustForwardedProto.
	IsHTTPS func(*http.Request) bool
	// RedirectHTTPS answers plain-HTTP requests with 308 Permanent Redirect
	// to the https:// URL (308 keeps the method and body). Default false.
	RedirectHTTPS bool

	// String headers: "" sends the default, Omit sends nothing.
	FrameOptions              string // X-Frame-Options, default DefaultFrameOptions
	ReferrerPolicy            string // Referrer-Policy, default DefaultReferrerPolicy
	CrossOriginOpenerPolicy   string // default DefaultCrossOriginOpenerPolicy
	CrossOriginResourcePolicy string // default DefaultCrossOriginResourcePolicy
	PermissionsPolicy         string // default DefaultPermissionsPolicy
	// CrossOriginEmbedderPolicy is opt-in ("require-corp" or
	// "credentialless"): it breaks cross-origin embeds that do not opt in.
	// Default: not sent.
	CrossOriginEmbedderPolicy string

	// API marks responses that are data (JSON), never rendered as a
	// document: the default CSP becomes APICSP() (nothing may load, nothing
	// may frame it; no nonce to generate), and the headers that only
	// govern documents are not sent (Permissions-Policy, Referrer-Policy,
	// Cross-Origin-Opener-Policy, Origin-Agent-Cluster,
	// X-DNS-Prefetch-Control, X-Download-Options,
	// X-Permitted-Cross-Domain-Policies, X-XSS-Protection), as the OWASP
	// REST Security Cheat Sheet recommends: what is left is its API set
	// (CSP with frame-ancestors 'none', X-Content-Type-Options,
	// X-Frame-Options, HSTS on HTTPS) plus Cross-Origin-Resource-Policy.
	// A data response loads nothing, so it never sends a Referer that
	// Referrer-Policy could govern. Default false.
	API bool
}

// documentOnly are the headers Config.API leaves out.
var documentOnly = map[string]bool{
	"Permissions-Policy": true, "Cross-Origin-Opener-Policy": true, "Origin-Agent-Cluster": true, "Referrer-Policy": true,
	"X-DNS-Prefetch-Control": true, "X-Download-Options": true, "X-Permitted-Cross-Domain-Policies": true,
	"X-XSS-Protection": true,
}

// header is one precomputed header; value is shared by every response
// (len == cap == 1, so an Add by a handler copies instead of writing into it).
type header struct {
	name  string
	value []string
}

// Headers is the built middleware: every header value that does not
// depend on the request is computed once by New; per request Handler only
// assigns them, plus the CSP with a fresh nonce. Build it with New; derive
// per-route variants with With. Safe for concurrent use.
type Headers struct {
	cfg      Config
	fixed    []header // computed once
	hsts     []string
	cspName  string
	cspParts []string // the CSP split around nonce positions
	isHTTPS  func(*http.Request) bool
}

// New validates cfg and computes every header value that does not depend
// on the request.
func New(cfg Config) (*Headers, error) {
	h := &Headers{cfg: cfg, isHTTPS: cfg.IsHTTPS}
	if h.isHTTPS == nil {
		h.isHTTPS = func(r *http.Request) bool { return r.TLS != nil }
	}
	var err error
	if h.fixed, err = fixedHeaders(cfg); err != nil {
		return nil, err
	}
	if !cfg.DisableCSP {
		if err := h.compileCSP(cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.DisableHSTS {
		if h.hsts, err = hstsValue(cfg); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// fixedHeaders computes the headers every response gets as they are.
func fixedHeaders(cfg Config) ([]header, error) {
	var out []header
	for _, x := range []struct{ name, value, def string }{
		{"X-Content-Type-Options", "", "nosniff"},
		{"X-Frame-Options", cfg.FrameOptions, DefaultFrameOptions},
		{"Referrer-Policy", cfg.ReferrerPolicy, DefaultReferrerPolicy},
		{"Cross-Origin-Opener-Policy", cfg.CrossOriginOpenerPolicy, DefaultCrossOriginOpenerPolicy},
		{"Cross-Origin-Resource-Policy", cfg.CrossOriginResourcePolicy, DefaultCrossOriginResourcePolicy},
		{"Cross-Origin-Embedder-Policy", cfg.CrossOriginEmbedderPolicy, ""},
		{"Origin-Agent-Cluster", "", "?1"},
		{"X-Permitted-Cross-Domain-Policies", "", "none"},
		{"X-DNS-Prefetch-Control", "", "off"},
		{"X-Download-Options", "", "noopen"},
		{"X-XSS-Protection", "", "0"}, // disables the legacy, exploitable XSS auditor
		{"Permissions-Policy", cfg.PermissionsPolicy, DefaultPermissionsPolicy},
		{"Reporting-Endpoints", cfg.ReportingEndpoints, ""},
	} {
		value := x.value
		if value == Omit || cfg.API && documentOnly[x.name] {
			continue
		}
		if value == "" {
			value = x.def
		}
		if value == "" {
			continue
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("secheaders: %s value contains a control character", x.name)
		}
		out = append(out, header{http.CanonicalHeaderKey(x.name), []string{value}})
	}
	return out, nil
}

// compileCSP validates the policy; a policy without a nonce becomes a
// fixed header, one with a nonce is kept split around the nonce positions.
func (h *Headers) compileCSP(cfg Config) error {
	csp := cfg.CSP
	if len(csp.directives) == 0 {
		csp = defaultCSP(cfg.API)
	}
	parts, err := csp.compile()
	if err != nil {
		return err
	}
	h.cspName = "Content-Security-Policy"
	if cfg.CSPReportOnly {
		h.cspName = "Content-Security-Policy-Report-Only"
	}
	if len(parts) == 1 {
		h.fixed = append(h.fixed, header{h.cspName, []string{parts[0]}})
		return nil
	}
	h.cspParts = parts
	return nil
}

// hstsValue is the Strict-Transport-Security value.
func hstsValue(cfg Config) ([]string, error) {
	maxAge := cfg.HSTSMaxAge
	if maxAge == 0 {
		maxAge = DefaultHSTSMaxAge
	}
	if maxAge < 0 {
		return nil, fmt.Errorf("secheaders: negative HSTSMaxAge")
	}
	v := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	if !cfg.HSTSNoSubdomains {
		v += "; includeSubDomains"
	}
	if !cfg.HSTSNoPreload {
		v += "; preload"
	}
	return []string{v}, nil
}

// With builds a variant of h for one route: mutate receives a copy of h's
// Config to change (typically CSP, e.g. c.CSP = c.CSP.Add(ImgSrc, "https:")).
func (h *Headers) With(mutate func(*Config)) (*Headers, error) {
	cfg := h.cfg
	prefilled := len(cfg.CSP.directives) == 0
	if prefilled {
		cfg.CSP = defaultCSP(cfg.API)
	}
	api := cfg.API
	mutate(&cfg)
	if prefilled && cfg.API != api && sameCSP(cfg.CSP, defaultCSP(api)) {
		cfg.CSP = CSP{} // switched to or from API: that mode's default
	}
	return New(cfg)
}

func defaultCSP(api bool) CSP {
	if api {
		return APICSP()
	}
	return DefaultCSP()
}

func sameCSP(a, b CSP) bool {
	pa, erra := a.compile()
	pb, errb := b.compile()
	return erra == nil && errb == nil && strings.Join(pa, "\x00") == strings.Join(pb, "\x00")
}

// Handler wraps next. It has the shape of Middleware.
func (h *Headers) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		https := h.isHTTPS(r)
		if h.cfg.RedirectHTTPS && !https {
			redirectHTTPS(w, r)
			return
		}
		hdr := w.Header()
		for i := range h.fixed {
			hdr[h.fixed[i].name] = h.fixed[i].value
		}
		if https && h.hsts != nil {
			hdr["Strict-Transport-Security"] = h.hsts
		}
		if h.cspParts != nil {
			nc := &nonceCtx{Context: r.Context()}
			nc.nonce, nc.header[0] = h.nonceCSP()
			hdr[h.cspName] = nc.header[:]
			r = r.WithContext(nc)
		}
		next.ServeHTTP(w, r)
	})
}

// Middleware returns h.Handler as a func(http.Handler) http.Handler.
func (h *Headers) Middleware() func(http.Handler) http.Handler { return h.Handler }
