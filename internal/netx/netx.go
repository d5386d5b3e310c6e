// Package netx holds the trusted-proxy checks ratelimit and secheaders
// share: who the TCP peer of a request is, and whether it is trusted.
package netx

import (
	"net"
	"net/http"
	"net/netip"
)

// Peer returns the request's TCP peer address (IPv4-mapped IPv6
// unmapped); ok is false when RemoteAddr is not an IP:port.
func Peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Contains reports whether any prefix contains a.
func Contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
