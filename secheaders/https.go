package secheaders

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/levqor/levqor/internal/netx"
)

func redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h // drop the plain-HTTP port; HTTPS is on its default port
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if !validHost(host) {
		http.Error(w, "bad host", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		_, err := netip.ParseAddr(h[1 : len(h)-1])
		return err == nil
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// TrustForwardedProto returns an IsHTTPS hook for a TLS-terminating proxy:
// a request is HTTPS if it arrived over TLS, or if its TCP peer is in
// trusted and it carries "X-Forwarded-Proto: https". The header of any
// other peer is ignored, since a client can send anything.
func TrustForwardedProto(trusted []netip.Prefix) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.TLS != nil {
			return true
		}
		peer, ok := netx.Peer(r)
		return ok && netx.Contains(trusted, peer) &&
			strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
	}
}
