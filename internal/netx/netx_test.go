package netx_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/levqor/levqor/internal/netx"
)

func TestPeerAndContains(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		remote string
		ok, in bool
	}{
		{"10.1.2.3:443", true, true}, {"[::ffff:10.1.2.3]:1", true, true}, {"[fd00::1]:80", true, true},
		{"192.0.2.1:80", true, false}, {"garbage", false, false}, {"[::1]:x", true, false},
	} {
		a, ok := netx.Peer(&http.Request{RemoteAddr: tc.remote})
		if ok != tc.ok || (ok && netx.Contains(trusted, a) != tc.in) {
			t.Errorf("%s: %v %v", tc.remote, a, ok)
		}
	}
}
