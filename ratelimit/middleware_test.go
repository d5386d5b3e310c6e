package ratelimit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/testhttp"
	"github.com/levqor/levqor/ratelimit"
)

type fixedClockLimiter struct {
	*ratelimit.Memory
	now time.Time
}

func (f *fixedClockLimiter) Allow(_ context.Context, key string) (ratelimit.Result, error) {
	return f.AllowAt(key, f.now), nil
}

func serve(t *testing.T, l ratelimit.Limiter, failOpen bool) (*httptest.Server, *int) {
	t.Helper()
	mw, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: l, FailOpen: failOpen})
	if err != nil {
		t.Fatal(err)
	}
	calls := new(int)
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		_, _ = io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)
	return srv, calls
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	return testhttp.Do(t, http.MethodGet, url, "", nil)
}

func TestMiddlewareHeaders(t *testing.T) {
	l := &fixedClockLimiter{Memory: newMemory(t, ratelimit.MemoryConfig{}), now: t0}
	srv, calls := serve(t, l, false)

	res, _ := fetch(t, srv.URL)
	want := map[string]string{
		"RateLimit-Policy":      `"default";q=60;w=60`,
		"RateLimit":             `"default";r=59;t=1`,
		"X-RateLimit-Limit":     "60",
		"X-RateLimit-Remaining": "59",
		"X-RateLimit-Reset":     "1",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for range 59 {
		fetch(t, srv.URL)
	}
	res, body := fetch(t, srv.URL)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("61st request: status %d", res.StatusCode)
	}
	if *calls != 60 {
		t.Fatalf("handler called %d times, want 60", *calls)
	}
	for k, v := range map[string]string{
		"Retry-After":           "1",
		"RateLimit":             `"default";r=0;t=60`,
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "60",
		"Content-Type":          "application/json",
	} {
		if got := res.Header.Get(k); got != v {
			t.Errorf("429 %s = %q, want %q", k, got, v)
		}
	}
	var e struct {
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.RetryAfter != 1 {
		t.Fatalf("429 body %q (%v)", body, err)
	}
	// Half a minute later, 30 requests are back.
	l.now = t0.Add(30 * time.Second)
	res, _ = fetch(t, srv.URL)
	if got := res.Header.Get("RateLimit"); got != `"default";r=29;t=31` {
		t.Fatalf("RateLimit = %q", got)
	}
}

func TestMiddlewarePolicyWindow(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.Rate{Limit: 10, Period: time.Second, Burst: 25}})
	srv, _ := serve(t, m, false)
	res, _ := fetch(t, srv.URL)
	// 25 requests at one per 100ms take 2.5s to refill, rounded up.
	if got := res.Header.Get("RateLimit-Policy"); got != `"default";q=25;w=3` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
}

func TestMiddlewareLimiterError(t *testing.T) {
	rate := ratelimit.PerMinute(60)
	srv, calls := serve(t, brokenLimiter{rate}, false)
	res, body := fetch(t, srv.URL)
	if res.StatusCode != http.StatusServiceUnavailable || *calls != 0 {
		t.Fatalf("fail closed: status %d, handler calls %d, body %q", res.StatusCode, *calls, body)
	}
	srv, calls = serve(t, brokenLimiter{rate}, true)
	res, _ = fetch(t, srv.URL)
	if res.StatusCode != http.StatusOK || *calls != 1 {
		t.Fatalf("fail open: status %d, handler calls %d", res.StatusCode, *calls)
	}
}

func TestMiddlewareKeys(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(1)})
	ip, _ := ratelimit.NewClientIP(ratelimit.IPConfig{})
	type subjectKey struct{}
	key := ratelimit.KeyBySubject(func(ctx context.Context) string {
		s, _ := ctx.Value(subjectKey{}).(string)
		return s
	}, ratelimit.KeyByIP(ip))
	mw, _ := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: m, KeyFunc: key})
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func(subject string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.7:1"
		if subject != "" {
			r = r.WithContext(context.WithValue(r.Context(), subjectKey{}, subject))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if do("alice") != 200 || do("alice") != 429 {
		t.Fatal("alice not limited by subject")
	}
	if do("bob") != 200 {
		t.Fatal("bob shares alice's budget")
	}
	if do("") != 200 || do("") != 429 {
		t.Fatal("anonymous requests not limited by IP")
	}
	if _, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: m, PolicyName: `bad"name`}); err == nil {
		t.Fatal("policy name with a quote accepted")
	}
	if _, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{}); err == nil {
		t.Fatal("nil limiter accepted")
	}
}

func TestMiddlewareOmitLegacyHeaders(t *testing.T) {
	l := &fixedClockLimiter{Memory: newMemory(t, ratelimit.MemoryConfig{}), now: t0}
	mw, err := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: l, OmitLegacyHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	h := rec.Header()
	if h.Get("RateLimit") != `"default";r=59;t=1` || h.Get("RateLimit-Policy") == "" {
		t.Fatalf("IETF headers missing: %v", h)
	}
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if h.Get(k) != "" {
			t.Errorf("%s sent with OmitLegacyHeaders", k)
		}
	}
}
