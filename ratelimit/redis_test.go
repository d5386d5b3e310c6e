package ratelimit_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

// topology is a Redis under test: a single node or a 3-master cluster.
type topology struct {
	Client redis.UniversalClient
	// Stop and Restart stop and restart the node serving key (restarted
	// empty: no persistence) and wait until it serves again.
	Stop, Restart func(key string)
}

// eachTopology runs fn on a single redis-server and on a Redis Cluster.
func eachTopology(t *testing.T, fn func(t *testing.T, top topology)) {
	t.Run("single", func(t *testing.T) {
		srv := redistest.Start(t)
		fn(t, topology{
			Client:  redisClient(t, srv),
			Stop:    func(string) { srv.Stop() },
			Restart: func(string) { srv.Restart() },
		})
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = cl.Close() })
		fn(t, topology{
			Client: cl,
			Stop:   func(key string) { c.Node(c.NodeFor(key)).Stop() },
			Restart: func(key string) {
				for i := range 3 {
					if !c.Node(i).Running() {
						c.Node(i).Restart()
					}
				}
				c.WaitHealthy()
			},
		})
	})
}

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
func TestRedisMatchesMemory(t *testing.T) { eachTopology(t, testRedisMatchesMemory) }

func testRedisMatchesMemory(t *testing.T, top topology) {
	c := top.Client
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

// TestRedisStoredTAT: the key holds the TAT as 8 little-endian bytes, and
// a decimal TAT (as versions before 2026-11-26 wrote it) is read as such,
// so keys written before an upgrade keep their budget.
func TestRedisStoredTAT(t *testing.T) { eachTopology(t, testRedisStoredTAT) }

func testRedisStoredTAT(t *testing.T, top topology) {
	ctx := context.Background()
	rate := ratelimit.Rate{Limit: 10, Period: time.Second, Burst: 3} // interval 100ms, burst window 300ms
	now := time.Now().Truncate(time.Second)
	red := newRedis(t, ratelimit.RedisConfig{Client: top.Client, Rate: rate, Prefix: "tat:"})
	ratelimit.SetRedisClock(red, func() time.Time { return now })

	if res, err := red.Allow(ctx, "fresh"); err != nil || !res.Allowed {
		t.Fatalf("fresh key: %+v, %v", res, err)
	}
	raw, err := top.Client.Get(ctx, "tat:fresh").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if want := now.UnixMicro() + 100_000; len(raw) != 8 || int64(binary.LittleEndian.Uint64(raw)) != want {
		t.Fatalf("stored %q, want the 8 bytes of %d", raw, want)
	}

	// Two of the three burst slots used, written the old way.
	if err := top.Client.Set(ctx, "tat:old", strconv.FormatInt(now.UnixMicro()+200_000, 10), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []ratelimit.Result{
		{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: 300 * time.Millisecond},
		{Allowed: false, Limit: 3, RetryAfter: 100 * time.Millisecond, ResetAfter: 300 * time.Millisecond},
	} {
		got, err := red.Allow(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("decimal TAT: got %+v, want %+v", got, want)
		}
	}
}

// TestRedisWithoutStructLibrary: on a Redis-compatible server without
// Redis's bundled struct library (miniredis), the script's plain-Lua
// encoding takes the same decisions and stores the same bytes.
func TestRedisWithoutStructLibrary(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	typ, err := c.Eval(context.Background(), "return type(rawget(_G, 'struct'))", nil).Text()
	if err != nil || typ != "nil" {
		t.Fatalf("miniredis has a struct library (%q, %v): the plain-Lua path would not be tested", typ, err)
	}
	top := topology{Client: c}
	t.Run("matches memory", func(t *testing.T) { testRedisMatchesMemory(t, top) })
	t.Run("stored TAT", func(t *testing.T) { testRedisStoredTAT(t, top) })
}

// TestRedisBatchMatchesMemory: decisions that share a round trip (queued
// while another is in flight, then sent as one pipeline with one script
// call per key) get exactly the Results the memory limiter gives the same
// requests at the same instant, in some order. Each attempt starts with
// Redis knowing no script: the first, lone request loads it on its key's
// node only, so in a cluster the batch that follows is refused (NOSCRIPT)
// on one node and runs on the other, and must not run there twice.
func TestRedisBatchMatchesMemory(t *testing.T) { eachTopology(t, testRedisBatchMatchesMemory) }

func testRedisBatchMatchesMemory(t *testing.T, top topology) {
	rate := ratelimit.Rate{Limit: 10, Period: time.Second, Burst: 20}
	var pipelines pipelineCounter
	top.Client.AddHook(&pipelines)
	now := time.Now().Truncate(time.Second)
	// Whether a request queues depends on timing: try again (new keys) in
	// the unlikely case that none did.
	for attempt := 0; pipelines.n.Load() == 0; attempt++ {
		if attempt == 3 {
			t.Fatal("no decisions were batched in three attempts")
		}
		if err := top.Client.ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		red := newRedis(t, ratelimit.RedisConfig{Client: top.Client, Rate: rate, Prefix: fmt.Sprintf("batch%d:", attempt), Pipelines: 1})
		ratelimit.SetRedisClock(red, func() time.Time { return now })
		mem := newMemory(t, ratelimit.MemoryConfig{Rate: rate})
		keys := []string{"a", "b"}
		const perKey = 48 // both outcomes: the burst is 20
		got := make(map[string][]ratelimit.Result)
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range perKey * len(keys) {
			key := keys[i%len(keys)]
			wg.Go(func() {
				<-start
				r, err := red.Allow(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[key] = append(got[key], r)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		for _, key := range keys {
			var want []ratelimit.Result
			for range perKey {
				want = append(want, mem.AllowAt(key, now))
			}
			sortResults(want)
			sortResults(got[key])
			if !slices.Equal(got[key], want) {
				t.Fatalf("key %s: redis %+v\nmemory %+v", key, got[key], want)
			}
		}
	}
}

// pipelineCounter is a go-redis hook counting pipelines sent.
type pipelineCounter struct{ n atomic.Int64 }

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func sortResults(rs []ratelimit.Result) {
	slices.SortFunc(rs, func(a, b ratelimit.Result) int {
		if a.Allowed != b.Allowed {
			if a.Allowed {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Remaining, a.Remaining), cmp.Compare(a.RetryAfter, b.RetryAfter), cmp.Compare(a.ResetAfter, b.ResetAfter))
	})
}

// TestRedisServerTime uses Redis TIME: a slow rate makes the few
// milliseconds between calls irrelevant, so decisions match memory's.
func TestRedisServerTime(t *testing.T) {
	eachTopology(t, testRedisServerTime)
}

func testRedisServerTime(t *testing.T, top topology) {
	red := newRedis(t, ratelimit.RedisConfig{Client: top.Client, Rate: ratelimit.PerHour(10)})
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

func TestRedisConcurrentExact(t *testing.T) { eachTopology(t, testRedisConcurrentExact) }

func testRedisConcurrentExact(t *testing.T, top topology) {
	red := newRedis(t, ratelimit.RedisConfig{Client: top.Client, Rate: ratelimit.PerHour(50)})
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

func TestRedisNoScript(t *testing.T) { eachTopology(t, testRedisNoScript) }

func testRedisNoScript(t *testing.T, top topology) {
	c := top.Client
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

func TestRedisKeyExpiry(t *testing.T) { eachTopology(t, testRedisKeyExpiry) }

// testRedisKeyExpiry: a key in debt outlives its TAT while the TAT crosses
// burst windows (SET … KEEPTTL keeps a key's TTL: the script must move
// it), and it expires at most two windows (two minutes) after its TAT, so
// idle keys go away.
// Redis expires keys on its own clock, so this test runs on real time
// (for 400 ms, without sleeping) and asserts nothing about speed.
func testRedisKeyExpiry(t *testing.T, top topology) {
	c := top.Client
	// 10 ms per request, burst 5: a 50 ms window.
	rate := ratelimit.Rate{Limit: 100, Period: time.Second, Burst: 5}
	const window = 50 * time.Millisecond
	red := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: rate})
	ctx := context.Background()
	key := ratelimit.DefaultRedisPrefix + "k"
	// Redis keeps expiry in whole milliseconds of its command clock
	// (truncated at the script and again at PTTL) and the script rounds
	// the lifetime up: together under 2 ms either side of the exact bound,
	// which TIME in microseconds gives. Once, in CI's race-detector pass,
	// PTTL read 144 ms against a bound of 143.98 ms: Redis's millisecond
	// clocks (its cached command time) can add a third millisecond.
	const slack = 3 * time.Millisecond
	allowed := 0
	for start := time.Now(); time.Since(start) < 400*time.Millisecond; {
		res, err := red.Allow(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < res.ResetAfter-slack {
			t.Fatalf("after %d allowed: key expires in %v, before its TAT (in %v)", allowed, ttl, res.ResetAfter)
		}
		if ttl > res.ResetAfter+2*window+slack {
			t.Fatalf("key expires in %v: more than two windows after its TAT (in %v)", ttl, res.ResetAfter)
		}
	}
	if allowed < 20 { // 200 ms of debt: four windows
		t.Fatalf("%d allowed in 400 ms: the TAT did not cross windows", allowed)
	}
	if n, err := c.DBSize(ctx).Result(); n != 1 {
		t.Fatalf("%d keys for one limiter key (err %v)", n, err)
	}
	// A long window: the key still expires within two minutes of its TAT.
	slow := newRedis(t, ratelimit.RedisConfig{Client: c, Rate: ratelimit.PerHour(10), Prefix: "slow:"})
	res, err := slow.Allow(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, "slow:k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl < res.ResetAfter-slack || ttl > res.ResetAfter+2*time.Minute+slack {
		t.Fatalf("PerHour(10) key expires in %v; its TAT is in %v", ttl, res.ResetAfter)
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	eachTopology(t, func(t *testing.T, top topology) {
		red := newRedis(t, ratelimit.RedisConfig{Client: top.Client})
		top.Stop(ratelimit.DefaultRedisPrefix + "k")
		if _, err := red.Allow(context.Background(), "k"); err == nil {
			t.Fatal("no error with the key's Redis node down")
		}
	})
	if _, err := ratelimit.NewRedis(ratelimit.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
}
