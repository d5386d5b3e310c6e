package ratelimit_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/levqor/levqor/ratelimit"
)

// FuzzParseRate: any string either parses into an enforceable rate that
// formats back to an equal one, or is an error; nothing panics.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"60/m", "10/s:20", "100/10s", "1/h", "0/m", "-1/s", "5/", "/m", "9999999999999999999/s", "1/1ns", "3/m:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRate(s)
		if err != nil {
			return
		}
		if r.Limit <= 0 || r.Burst <= 0 || r.Period <= 0 {
			t.Fatalf("%q parsed into %+v", s, r)
		}
		back, err := ratelimit.ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, r, r.String(), back, err)
		}
	})
}

// FuzzClientIP: whatever a client puts in X-Forwarded-For or Forwarded,
// the answer is the peer or an address from the header, never a panic;
// from an untrusted peer it is always the peer.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.1", "for=1.2.3.4;proto=https", `for="[2001:db8::1]:80"`, ",,,", "unknown", "[::1]", "1.2.3.4:99999"} {
		f.Add(s, true)
	}
	trusted, _ := ratelimit.ParsePrefixes("10.0.0.0/8")
	xff, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted})
	fwd, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted, Header: ratelimit.HeaderForwarded})
	f.Fuzz(func(t *testing.T, header string, fromProxy bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "198.51.100.7:1234"
		if fromProxy {
			r.RemoteAddr = "10.0.0.2:1234"
		}
		r.Header.Set("X-Forwarded-For", header)
		r.Header.Set("Forwarded", header)
		for _, c := range []*ratelimit.ClientIP{xff, fwd} {
			a, ok := c.Addr(r)
			if !ok || !a.IsValid() {
				t.Fatalf("no address for header %q", header)
			}
			if !fromProxy && a != netip.MustParseAddr("198.51.100.7") {
				t.Fatalf("untrusted peer's header %q moved the client to %v", header, a)
			}
			_ = c.Key(r)
		}
	})
}
