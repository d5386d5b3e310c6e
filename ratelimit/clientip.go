package ratelimit

import (
	"github.com/levqor/levqor/internal/netx"

	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix groups IPv6 clients by /64, the smallest block one
// subscriber usually gets: otherwise one client could rotate through 2^64
// addresses to dodge its limit.
const DefaultIPv6Prefix = 64

// Forwarding headers a trusted proxy may write.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded" // RFC 7239
)

// IPConfig configures ClientIP.
type IPConfig struct {
	// TrustedProxies are the CIDRs of proxies whose forwarding header is
	// believed. Default none: the client is always the TCP peer (RemoteAddr).
	TrustedProxies []netip.Prefix
	// Header is the forwarding header the trusted proxies write:
	// HeaderXForwardedFor (the default) or HeaderForwarded. Only that one is
	// read; a client-supplied copy of the other is ignored.
	Header string
	// IPv6Prefix is the prefix length IPv6 clients are grouped by.
	// Default DefaultIPv6Prefix (64); 128 disables grouping.
	IPv6Prefix int
}

// ClientIP finds the client address of a request behind trusted proxies.
type ClientIP struct {
	trusted []netip.Prefix
	header  string
	v6bits  int
}

// NewClientIP validates cfg.
func NewClientIP(cfg IPConfig) (*ClientIP, error) {
	switch cfg.Header {
	case "":
		cfg.Header = HeaderXForwardedFor
	case HeaderXForwardedFor, HeaderForwarded:
	default:
		return nil, fmt.Errorf("ratelimit: IPConfig.Header must be %q or %q, not %q", HeaderXForwardedFor, HeaderForwarded, cfg.Header)
	}
	if cfg.IPv6Prefix == 0 {
		cfg.IPv6Prefix = DefaultIPv6Prefix
	}
	if cfg.IPv6Prefix < 1 || cfg.IPv6Prefix > 128 {
		return nil, fmt.Errorf("ratelimit: IPConfig.IPv6Prefix %d out of range 1-128", cfg.IPv6Prefix)
	}
	trusted := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("ratelimit: invalid trusted proxy prefix %v", p)
		}
		trusted = append(trusted, p.Masked())
	}
	return &ClientIP{trusted: trusted, header: cfg.Header, v6bits: cfg.IPv6Prefix}, nil
}

// ParsePrefixes parses a comma- or space-separated list of CIDRs or bare
// addresses (a bare address is a /32 or /128), e.g. "10.0.0.0/8, ::1".
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("ratelimit: trusted proxy %q: %w", f, err)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: trusted proxy %q: %w", f, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Addr returns the client address: RemoteAddr, unless the peer is a trusted
// proxy, in which case the forwarding header is walked from the right and
// the first address that is not a trusted proxy wins. The left-most entries
// are whatever the client sent and are never believed. If the chain holds
// only trusted proxies the left-most of them is returned. A malformed header
// falls back to RemoteAddr. ok is false only when RemoteAddr itself is not
// an IP address (e.g. a Unix socket).
func (c *ClientIP) Addr(r *http.Request) (addr netip.Addr, ok bool) {
	peer, ok := parseHostPort(r.RemoteAddr)
	if !ok || !c.isTrusted(peer) {
		return peer, ok
	}
	hops, ok := c.hops(r.Header)
	if !ok || len(hops) == 0 {
		return peer, true
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !c.isTrusted(hops[i]) {
			return hops[i], true
		}
	}
	return hops[0], true
}

// Key returns the rate-limit key of the request's client: the address, or
// for IPv6 its /IPv6Prefix network ("2001:db8:1:2::/64"). A request whose
// RemoteAddr is not an IP address gets its RemoteAddr as the key.
func (c *ClientIP) Key(r *http.Request) string {
	a, ok := c.Addr(r)
	if !ok {
		return r.RemoteAddr
	}
	return c.key(a)
}

// PeerKey returns the key of a connection's peer (remoteAddr as
// "host:port", e.g. net.Conn.RemoteAddr().String()), the key Key gives a
// request from it without forwarding headers, and whether the peer is a
// trusted proxy, whose connections carry many clients. A remoteAddr that
// is not an IP address is its own key.
func (c *ClientIP) PeerKey(remoteAddr string) (key string, trusted bool) {
	a, ok := parseHostPort(remoteAddr)
	if !ok {
		return remoteAddr, false
	}
	return c.key(a), c.isTrusted(a)
}

// key is an address's rate-limit key: itself, or an IPv6 address's
// /IPv6Prefix network.
func (c *ClientIP) key(a netip.Addr) string {
	if a.Is6() && c.v6bits < 128 {
		p, _ := a.Prefix(c.v6bits)
		return p.String()
	}
	return a.String()
}

func (c *ClientIP) isTrusted(a netip.Addr) bool { return netx.Contains(c.trusted, a) }

// hops parses every value of the configured header, in order. Any
// malformed element makes the whole header untrustworthy (ok false).
func (c *ClientIP) hops(h http.Header) (hops []netip.Addr, ok bool) {
	for _, line := range h.Values(c.header) {
		for _, elem := range strings.Split(line, ",") {
			var a netip.Addr
			if c.header == HeaderForwarded {
				a, ok = forwardedFor(elem)
			} else {
				a, ok = parseNode(strings.TrimSpace(elem))
			}
			if !ok {
				return nil, false
			}
			hops = append(hops, a)
		}
	}
	return hops, true
}

// forwardedFor extracts the for= node of one RFC 7239 forwarded-element.
func forwardedFor(elem string) (netip.Addr, bool) {
	for _, pair := range strings.Split(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(k, "for") {
			continue
		}
		return parseNode(strings.Trim(v, `"`))
	}
	return netip.Addr{}, false
}

// parseNode parses "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]" or
// "[2001:db8::1]:80", and bare IPv6.
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone(""), true
		}
		return netip.Addr{}, false
	}
	return parseHostPort(s)
}

func parseHostPort(s string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
