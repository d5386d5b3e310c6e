package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/ratelimit"
)

// countingLimiter counts the calls that reach the wrapped limiter.
type countingLimiter struct {
	ratelimit.Limiter
	calls atomic.Int64
}

func (c *countingLimiter) Allow(ctx context.Context, key string) (ratelimit.Result, error) {
	c.calls.Add(1)
	return c.Limiter.Allow(ctx, key)
}

type brokenLimiter struct{ rate ratelimit.Rate }

func (b brokenLimiter) Allow(context.Context, string) (ratelimit.Result, error) {
	return ratelimit.Result{}, errors.New("broken")
}
func (b brokenLimiter) Rate() ratelimit.Rate { return b.rate }

// hangingLimiter blocks until the context ends, like a black-holed Redis.
type hangingLimiter struct{ rate ratelimit.Rate }

func (h hangingLimiter) Allow(ctx context.Context, _ string) (ratelimit.Result, error) {
	<-ctx.Done()
	return ratelimit.Result{}, ctx.Err()
}
func (h hangingLimiter) Rate() ratelimit.Rate { return h.rate }

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFallback(t *testing.T, cfg ratelimit.FallbackConfig) *ratelimit.Fallback {
	t.Helper()
	f, err := ratelimit.NewFallback(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFallbackRedisKilledAndRestarted kills a real redis-server mid-test
// and restarts it: decisions move to memory, the breaker stops calling Redis,
// and after the cool-down a probe finds Redis back and decisions return to it.
func TestFallbackRedisKilledAndRestarted(t *testing.T) {
	eachTopology(t, testFallbackRedisKilledAndRestarted)
}

func testFallbackRedisKilledAndRestarted(t *testing.T, top topology) {
	ctx := context.Background()
	c := top.Client
	rate := ratelimit.PerMinute(60)
	primary := &countingLimiter{Limiter: newRedis(t, ratelimit.RedisConfig{Client: c, Rate: rate})}
	clk := &manualClock{t: time.Now()}
	f := newFallback(t, ratelimit.FallbackConfig{
		Primary:          primary,
		Secondary:        newMemory(t, ratelimit.MemoryConfig{Rate: rate}),
		FailureThreshold: 3,
		Cooldown:         10 * time.Second,
		Now:              clk.Now,
	})

	r, err := f.Allow(ctx, "k")
	if err != nil || !r.Allowed || r.Remaining != 59 {
		t.Fatalf("healthy: %+v, %v", r, err)
	}
	if n, _ := c.Exists(ctx, ratelimit.DefaultRedisPrefix+"k").Result(); n != 1 {
		t.Fatal("healthy decision did not come from Redis")
	}

	top.Stop(ratelimit.DefaultRedisPrefix + "k")
	for i := range 3 {
		r, err := f.Allow(ctx, "k")
		if err != nil || !r.Allowed {
			t.Fatalf("fallback decision %d: %+v, %v", i, r, err)
		}
	}
	if !f.Open() {
		t.Fatal("circuit not open after 3 consecutive failures")
	}
	callsWhenOpened := primary.calls.Load()
	for range 10 {
		if _, err := f.Allow(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if primary.calls.Load() != callsWhenOpened {
		t.Fatal("open circuit still calls the dead primary")
	}
	if f.Fallbacks() != 13 {
		t.Fatalf("Fallbacks = %d, want 13", f.Fallbacks())
	}

	// A probe after the cool-down while Redis is still down keeps it open.
	clk.Advance(11 * time.Second)
	if _, err := f.Allow(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if primary.calls.Load() != callsWhenOpened+1 || !f.Open() {
		t.Fatalf("failed probe: calls %d (want %d), open %v", primary.calls.Load(), callsWhenOpened+1, f.Open())
	}

	top.Restart(ratelimit.DefaultRedisPrefix + "k")
	if _, err := f.Allow(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if primary.calls.Load() != callsWhenOpened+1 {
		t.Fatal("probed again before the next cool-down")
	}
	clk.Advance(11 * time.Second)
	r, err = f.Allow(ctx, "k")
	if err != nil || f.Open() {
		t.Fatalf("recovery probe: %v, open %v", err, f.Open())
	}
	// The restarted Redis is empty: its first decision leaves 59.
	if r.Remaining != 59 {
		t.Fatalf("recovered decision not from Redis: %+v", r)
	}
	if n, _ := c.Exists(ctx, ratelimit.DefaultRedisPrefix+"k").Result(); n != 1 {
		t.Fatal("decisions did not return to Redis")
	}
}

func TestFallbackTimeout(t *testing.T) {
	rate := ratelimit.PerMinute(60)
	f := newFallback(t, ratelimit.FallbackConfig{
		Primary:   hangingLimiter{rate},
		Secondary: newMemory(t, ratelimit.MemoryConfig{Rate: rate}),
		Timeout:   20 * time.Millisecond,
	})
	r, err := f.Allow(context.Background(), "k")
	if err != nil || !r.Allowed {
		t.Fatalf("%+v, %v", r, err)
	}
	if f.Fallbacks() != 1 {
		t.Fatal("timed-out primary did not fall back")
	}
}

func TestFallbackCallerCancelIsNotAFailure(t *testing.T) {
	rate := ratelimit.PerMinute(60)
	f := newFallback(t, ratelimit.FallbackConfig{
		Primary:          hangingLimiter{rate},
		Secondary:        newMemory(t, ratelimit.MemoryConfig{Rate: rate}),
		FailureThreshold: 1,
		Timeout:          -1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Allow(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if f.Open() {
		t.Fatal("a caller's cancel opened the circuit")
	}
}

func TestFallbackBothFail(t *testing.T) {
	rate := ratelimit.PerMinute(60)
	for _, failOpen := range []bool{false, true} {
		f := newFallback(t, ratelimit.FallbackConfig{Primary: brokenLimiter{rate}, Secondary: brokenLimiter{rate}, FailOpen: failOpen})
		r, err := f.Allow(context.Background(), "k")
		if failOpen {
			if err != nil || !r.Allowed {
				t.Fatalf("fail open: %+v, %v", r, err)
			}
		} else if !errors.Is(err, ratelimit.ErrUnavailable) || r.Allowed {
			t.Fatalf("fail closed: %+v, %v", r, err)
		}
		if f.Unavailable() != 1 {
			t.Fatalf("Unavailable = %d", f.Unavailable())
		}
	}
	if _, err := ratelimit.NewFallback(ratelimit.FallbackConfig{Primary: brokenLimiter{rate}, Secondary: brokenLimiter{ratelimit.PerMinute(10)}}); err == nil {
		t.Fatal("mismatched rates accepted")
	}
}
