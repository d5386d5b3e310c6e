package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

func redisClient(t testing.TB, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedis(t testing.TB, cfg ratelimit.RedisConfig) *ratelimit.Redis {
	t.Helper()
	l, err := ratelimit.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRedisMatchesMemory replays one pseudo-random request sequence through
// both limiters with the same injected clock: every Result must be equal.
func TestRedisMatchesMemory(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	ctx := context.Background()
	for _, rate := range []ratelimit.Rate{
		ratelimit.PerMinute(60),
		{Limit: 10, Period: time.Second, Burst: 20},
		{Limit: 7, Period: time.Minute, Burst: 3}, // interval not a whole second
		{Limit: 1000, Period: time.Hour, Burst: 1},
	} {
		t.Run(rate.String(), func(t *testing.T) {
			now := time.Now().Truncate(time.Second)
			mem := newMemory(t, ratelimit.MemoryConfig{Rate: rate})
			red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: rate, Prefix: "eq:" + rate.String() + ":"})
			ratelimit.SetRedisClock(red, func() time.Time { return now })
			rng := rand.New(rand.NewPCG(1, 2))
			allowed := 0
			for i := range 2000 {
				key := fmt.Sprint("k", rng.IntN(3))
				if rng.IntN(8) == 0 {
					// Up to 2.5 emission intervals: both outcomes happen.
					interval := rate.Period / time.Duration(rate.Limit)
					now = now.Add(time.Duration(rng.Int64N(int64(interval) * 5 / 2)))
				}
				want := mem.AllowAt(key, now)
				got, err := red.Allow(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("request %d (%s at %v): redis %+v, memory %+v", i, key, now, got, want)
				}
				if got.Allowed {
					allowed++
				}
			}
			if allowed == 0 || allowed == 2000 {
				t.Fatalf("sequence exercised only one outcome (%d allowed)", allowed)
			}
		})
	}
}

// TestRedisServerTime uses Redis TIME: a slow rate makes the few
// milliseconds between calls irrelevant, so decisions match memory's.
func TestRedisServerTime(t *testing.T) {
	srv := redistest.Start(t)
	red := newRedis(t, ratelimit.RedisConfig{Client: redisClient(t, srv), Rate: ratelimit.PerHour(10)})
	mem := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerHour(10)})
	ctx := context.Background()
	for i := range 15 {
		got, err := red.Allow(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.Allow(ctx, "k")
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining || got.Limit != want.Limit {
			t.Fatalf("request %d: redis %+v, memory %+v", i, got, want)
		}
		if d := got.RetryAfter - want.RetryAfter; d > time.Second || d < -time.Second {
			t.Fatalf("request %d: RetryAfter redis %v, memory %v", i, got.RetryAfter, want.RetryAfter)
		}
	}
}

func TestRedisConcurrentExact(t *testing.T) {
	srv := redistest.Start(t)
	red := newRedis(t, ratelimit.RedisConfig{Client: redisClient(t, srv), Rate: ratelimit.PerHour(50)})
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 40 {
				r, err := red.Allow(context.Background(), "hot")
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if admitted != 50 {
		t.Fatalf("admitted %d of 320, want exactly 50", admitted)
	}
}

func TestRedisNoScript(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: ratelimit.PerMinute(60)})
	ctx := context.Background()
	if _, err := red.Allow(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := red.Allow(ctx, "k")
	if err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}
	if r.Remaining != 58 {
		t.Fatalf("state lost across NOSCRIPT: %+v", r)
	}
}

func TestRedisKeyExpiresWhenIdle(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: ratelimit.PerMinute(60)})
	ctx := context.Background()
	for range 3 {
		_, _ = red.Allow(ctx, "k")
	}
	ttl, err := c.PTTL(ctx, ratelimit.DefaultRedisPrefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Three requests at one per second are paid back within 3s.
	if ttl <= 2*time.Second || ttl > 3*time.Second {
		t.Fatalf("PTTL = %v, want (2s, 3s]", ttl)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 1 {
		t.Fatalf("%d keys for one limiter key", n)
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	red := newRedis(t, ratelimit.RedisConfig{Client: redisClient(t, srv)})
	srv.Stop()
	if _, err := red.Allow(context.Background(), "k"); err == nil {
		t.Fatal("no error with Redis down")
	}
	if _, err := ratelimit.NewRedis(ratelimit.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
}
