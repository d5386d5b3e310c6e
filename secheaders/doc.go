// Package secheaders sets security response headers with secure defaults:
// a strict Content-Security-Policy with a fresh 128-bit nonce per request
// (Nonce(ctx) hands it to templates), HSTS on HTTPS only, nosniff,
// X-Frame-Options DENY, Referrer-Policy no-referrer, COOP/CORP same-origin,
// Origin-Agent-Cluster, a deny-most Permissions-Policy, and the legacy
// headers that are still useful. COEP is opt-in; deprecated headers
// (Expect-CT, Feature-Policy, Public-Key-Pins, X-XSS-Protection other than
// "0") are never sent.
//
// # Quick start
//
//	h, _ := secheaders.New(secheaders.Config{})
//	http.ListenAndServe(":8080", h.Handler(mux)) // templates: secheaders.Nonce(r.Context())
//
// # Design
//
// CSP is a typed, immutable builder: directives and sources are validated,
// so no value can inject another directive. Every header value except the
// nonce is computed once in New; per request the middleware only assigns
// precomputed values, and with a nonce builds the one CSP string.
//
// Per-route variants come from Headers.With, which copies the base Config,
// lets the caller change part of it and builds a new Headers. ReportHandler
// receives CSP violation reports (report-uri and Reporting API formats).
package secheaders
