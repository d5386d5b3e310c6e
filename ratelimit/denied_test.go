package ratelimit_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

// scriptCounter is a go-redis hook counting script calls (EVALSHA and
// EVAL), alone or in pipelines.
type scriptCounter struct{ n atomic.Int64 }

func (*scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h *scriptCounter) count(cmd redis.Cmder) {
	if n := cmd.Name(); n == "evalsha" || n == "eval" {
		h.n.Add(1)
	}
}

// TestRedisRemembersDenials: a key found denied is denied without a round
// trip until it allows again, with the figures Redis (and the memory
// limiter) would give; then Redis decides again. DeniedKeys bounds the
// keys remembered and a negative value remembers none.
func TestRedisRemembersDenials(t *testing.T) { eachTopology(t, testRedisRemembersDenials) }

func testRedisRemembersDenials(t *testing.T, top topology) {
	counter := &scriptCounter{}
	top.Client.AddHook(counter)
	ctx := context.Background()
	rate := ratelimit.Rate{Limit: 2, Period: time.Minute, Burst: 2} // one per 30 s
	for _, tc := range []struct {
		name       string
		deniedKeys int
		keys       int
		// remembered is how many of the keys are answered without a
		// round trip while denied.
		remembered int
	}{
		{"default", 0, 3, 3},
		{"bounded", 2, 3, 2},
		{"none", -1, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().Truncate(time.Second)
			red := newRedis(t, ratelimit.RedisConfig{Client: top.Client, Rate: rate, Prefix: "denied:" + tc.name + ":", DeniedKeys: tc.deniedKeys})
			ratelimit.SetRedisClock(red, func() time.Time { return now })
			mem := newMemory(t, ratelimit.MemoryConfig{Rate: rate})
			keys := []string{"a", "b", "c"}[:tc.keys]
			decide := func(key string) ratelimit.Result {
				t.Helper()
				got, err := red.Allow(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if want := mem.AllowAt(key, now); got != want {
					t.Fatalf("%s at %v: redis %+v, memory %+v", key, now, got, want)
				}
				return got
			}
			calls := func() int64 { return counter.n.Load() }
			for _, k := range keys {
				decide(k)
				decide(k)
				if decide(k).Allowed { // the third finds the key denied
					t.Fatalf("%s: third request allowed", k)
				}
			}
			// For most of the 30 s until each key allows again, its
			// requests cost no round trip, if it is remembered.
			before := calls()
			for range 10 {
				now = now.Add(2 * time.Second)
				for _, k := range keys {
					if decide(k).Allowed {
						t.Fatalf("%s allowed at %v", k, now)
					}
				}
			}
			if got, want := calls()-before, int64(10*(tc.keys-tc.remembered)); got != want {
				t.Fatalf("%d script calls for 10 rounds of denied requests on %d keys, want %d (%d keys remembered)", got, tc.keys, want, tc.remembered)
			}
			// From the moment the key allows again, Redis decides.
			now = now.Add(10 * time.Second)
			before = calls()
			for _, k := range keys {
				if !decide(k).Allowed {
					t.Fatalf("%s still denied at %v", k, now)
				}
			}
			if got := calls() - before; got != int64(tc.keys) {
				t.Fatalf("%d script calls for %d keys allowed again, want one each", got, tc.keys)
			}
		})
	}
}

// TestRedisDeniedKeysSwept: when DeniedKeys are remembered already, a
// newly denied key takes the place of one whose wait has run out, though
// no request has asked for that one since.
func TestRedisDeniedKeysSwept(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	counter := &scriptCounter{}
	c.AddHook(counter)
	ctx := context.Background()
	rate := ratelimit.Rate{Limit: 2, Period: time.Minute, Burst: 1} // one per 30 s
	now := time.Now().Truncate(time.Second)
	red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: rate, DeniedKeys: 1})
	ratelimit.SetRedisClock(red, func() time.Time { return now })
	mem := newMemory(t, ratelimit.MemoryConfig{Rate: rate})
	// decide asks about key and reports whether that took a script call.
	decide := func(key string, allowed bool) (called bool) {
		t.Helper()
		before := counter.n.Load()
		got, err := red.Allow(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := mem.AllowAt(key, now); got != want || got.Allowed != allowed {
			t.Fatalf("%s at %v: redis %+v, memory %+v, want allowed %v", key, now, got, want, allowed)
		}
		return counter.n.Load() != before
	}
	for _, step := range []struct {
		after   time.Duration // clock moved before the step
		key     string
		allowed bool
		called  bool
	}{
		{0, "a", true, true},
		{0, "a", false, true},  // remembered
		{0, "a", false, false}, // answered from memory
		{0, "b", true, true},
		{0, "b", false, true}, // full: not remembered
		{time.Second, "b", false, true},
		{30 * time.Second, "c", true, true}, // a's wait has run out, unasked
		{0, "c", false, true},               // a swept, c remembered
		{0, "c", false, false},
	} {
		now = now.Add(step.after)
		if called := decide(step.key, step.allowed); called != step.called {
			t.Fatalf("%s at %v: script called %v, want %v", step.key, now, called, step.called)
		}
	}
}

// TestFallbackRememberedDenials: a denial the Redis limiter answers from
// memory says nothing of whether Redis is up. Such answers must neither
// close an open circuit (as a probe that "succeeded") nor keep a failing
// Redis's circuit from opening by breaking its run of failures.
func TestFallbackRememberedDenials(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	ctx := context.Background()
	rate := ratelimit.Rate{Limit: 1, Period: time.Hour, Burst: 1}
	red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: rate})
	clk := &manualClock{t: time.Now()}
	f := newFallback(t, ratelimit.FallbackConfig{
		Primary:          red,
		Secondary:        newMemory(t, ratelimit.MemoryConfig{Rate: rate}),
		FailureThreshold: 3,
		Cooldown:         10 * time.Second,
		Now:              clk.Now,
	})
	for _, want := range []bool{true, false} { // "spent" is denied, and remembered
		if r, err := f.Allow(ctx, "spent"); err != nil || r.Allowed != want {
			t.Fatalf("spent: %+v, %v; want allowed %v", r, err, want)
		}
	}

	srv.Stop()
	for i := range 3 { // each failure followed by a remembered denial
		if _, err := f.Allow(ctx, fmt.Sprint("fresh", i)); err != nil {
			t.Fatal(err)
		}
		if r, err := f.Allow(ctx, "spent"); err != nil || r.Allowed || r.RetryAfter <= 0 {
			t.Fatalf("spent while Redis is down: %+v, %v", r, err)
		}
	}
	if !f.Open() {
		t.Fatal("circuit not open after 3 failures of Redis, interleaved with remembered denials")
	}
	clk.Advance(11 * time.Second)
	if r, err := f.Allow(ctx, "spent"); err != nil || r.Allowed {
		t.Fatalf("spent after the cool-down: %+v, %v", r, err)
	}
	if !f.Open() {
		t.Fatal("a remembered denial closed the circuit with Redis still down")
	}
}
