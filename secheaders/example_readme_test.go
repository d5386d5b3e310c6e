package secheaders_test

import (
	"net/http"

	"github.com/levqor/levqor/secheaders"
)

// Example_readme is the secheaders section of the README, compiled.
func Example_readme() {
	mux := http.NewServeMux()
	var site, gallery http.Handler = http.NotFoundHandler(), http.NotFoundHandler()
	// README:begin
	h, _ := secheaders.New(secheaders.Config{})     // secure defaults
	mux.Handle("/", h.Handler(site))                // templates: secheaders.Nonce(r.Context())
	loose, _ := h.With(func(c *secheaders.Config) { // one page needs images from anywhere
		c.CSP = c.CSP.Add(secheaders.ImgSrc, secheaders.HTTPS)
	})
	mux.Handle("/gallery", loose.Handler(gallery))
	mux.Handle("POST /csp-report", secheaders.ReportHandler(secheaders.ReportConfig{})) // each distinct violation logged once a minute
	// README:end
}
