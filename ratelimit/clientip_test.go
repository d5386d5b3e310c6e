package ratelimit_test

import (
	"net/http/httptest"
	"testing"

	"github.com/levqor/levqor/ratelimit"
)

func TestClientIP(t *testing.T) {
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8, 192.168.1.1 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	behindXFF, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted})
	behindFwd, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted, Header: ratelimit.HeaderForwarded})
	direct, _ := ratelimit.NewClientIP(ratelimit.IPConfig{})
	noGrouping, _ := ratelimit.NewClientIP(ratelimit.IPConfig{IPv6Prefix: 128})

	tests := []struct {
		name   string
		c      *ratelimit.ClientIP
		remote string
		header map[string][]string
		want   string
	}{
		{"plain peer", direct, "203.0.113.7:5555", nil, "203.0.113.7"},
		{"XFF from untrusted peer is ignored", direct, "203.0.113.7:5555", map[string][]string{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.7"},
		{"XFF from untrusted peer with trust configured", behindXFF, "203.0.113.7:5555", map[string][]string{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.7"},
		{"trusted proxy, one hop", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "198.51.100.9"},
		{"spoofed left-most entry", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.9"}}, "198.51.100.9"},
		{"chain of trusted proxies", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.9, 192.168.1.1, 10.1.1.1"}}, "198.51.100.9"},
		{"several header lines", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.9, 10.9.9.9"}}, "198.51.100.9"},
		{"only trusted hops", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"10.3.3.3, 10.4.4.4"}}, "10.3.3.3"},
		{"no header from trusted proxy", behindXFF, "10.0.0.2:80", nil, "10.0.0.2"},
		{"malformed XFF falls back", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"198.51.100.9, not-an-ip"}}, "10.0.0.2"},
		{"empty XFF element falls back", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"198.51.100.9,,"}}, "10.0.0.2"},
		{"XFF with port", behindXFF, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"198.51.100.9:1234"}}, "198.51.100.9"},
		{"Forwarded ignored when XFF configured", behindXFF, "10.0.0.2:80", map[string][]string{"Forwarded": {"for=6.6.6.6"}, "X-Forwarded-For": {"198.51.100.9"}}, "198.51.100.9"},
		{"Forwarded for=", behindFwd, "10.0.0.2:80", map[string][]string{"Forwarded": {`for=6.6.6.6, for=198.51.100.9;proto=https`}}, "198.51.100.9"},
		{"Forwarded quoted IPv6 with port", behindFwd, "10.0.0.2:80", map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::/64"},
		{"Forwarded without for falls back", behindFwd, "10.0.0.2:80", map[string][]string{"Forwarded": {`proto=https`}}, "10.0.0.2"},
		{"XFF ignored when Forwarded configured", behindFwd, "10.0.0.2:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6"}}, "10.0.0.2"},
		{"IPv6 grouped by /64", direct, "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"IPv6 ungrouped", noGrouping, "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2:3:4:5:6"},
		{"IPv4-mapped IPv6 is IPv4", direct, "[::ffff:203.0.113.7]:443", nil, "203.0.113.7"},
		{"trusted IPv6 proxy", behindXFF, "[2001:db8:ffff::1]:443", map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "198.51.100.9"},
		{"RemoteAddr not an IP", direct, "@unix", nil, "@unix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, vs := range tc.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := tc.c.Key(r); got != tc.want {
				t.Fatalf("Key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClientIPConfig(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.0/8,,x"} {
		if _, err := ratelimit.ParsePrefixes(s); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", s)
		}
	}
	if _, err := ratelimit.NewClientIP(ratelimit.IPConfig{Header: "X-Real-IP"}); err == nil {
		t.Error("unsupported header accepted")
	}
	if _, err := ratelimit.NewClientIP(ratelimit.IPConfig{IPv6Prefix: 129}); err == nil {
		t.Error("IPv6Prefix 129 accepted")
	}
}

// TestClientIPPeerKey: a connection's peer gets the key a request from it
// without forwarding headers gets, and trusted proxies are told apart.
func TestClientIPPeerKey(t *testing.T) {
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted})
	for _, tc := range []struct {
		remote, key string
		trusted     bool
	}{
		{"203.0.113.7:5555", "203.0.113.7", false},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64", false},
		{"[::ffff:203.0.113.7]:80", "203.0.113.7", false},
		{"10.1.2.3:80", "10.1.2.3", true},
		{"@unix", "@unix", false},
	} {
		key, tr := c.PeerKey(tc.remote)
		if key != tc.key || tr != tc.trusted {
			t.Errorf("PeerKey(%q) = %q, %v; want %q, %v", tc.remote, key, tr, tc.key, tc.trusted)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if got := c.Key(r); !tc.trusted && got != key {
			t.Errorf("Key of a request from %q = %q, PeerKey %q", tc.remote, got, key)
		}
	}
}
