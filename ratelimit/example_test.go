package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/levqor/levqor/ratelimit"
)

func Example() {
	limiter, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(2)})
	defer limiter.Close()
	mw, _ := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: limiter})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.7:4242"
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// 200 "default";r=1;t=30
	// 200 "default";r=0;t=60
	// 429 "default";r=0;t=60
}

func ExampleMemory_AllowAt() {
	m, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Limit: 1, Period: time.Second, Burst: 2}})
	defer m.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second} {
		r := m.AllowAt("client", start.Add(at))
		fmt.Printf("+%v allowed=%v remaining=%d retry=%v\n", at, r.Allowed, r.Remaining, r.RetryAfter)
	}
	// Output:
	// +0s allowed=true remaining=1 retry=0s
	// +0s allowed=true remaining=0 retry=0s
	// +0s allowed=false remaining=0 retry=1s
	// +500ms allowed=false remaining=0 retry=500ms
	// +1s allowed=true remaining=0 retry=0s
}

func ExampleClientIP() {
	trusted, _ := ratelimit.ParsePrefixes("10.0.0.0/8")
	ip, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted})
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:80"                             // the load balancer
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.9") // client forged the first entry
	fmt.Println(ip.Key(r))
	// Output: 198.51.100.9
}
