package bench

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

// redisImpl is one Redis-backed limiter under benchmark.
type redisImpl struct {
	name  string
	allow func(key string) error
}

// redisLimiters builds Levqor's Redis limiter and its peers on rdb, each
// with its own key prefix and a rate no benchmark exhausts.
func redisLimiters(b *testing.B, rdb *redis.Client) []redisImpl {
	lv, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: rdb, Rate: ratelimit.Rate{Limit: 1_000_000, Period: 1e9, Burst: 1_000_000}, Prefix: "lv:"})
	if err != nil {
		b.Fatal(err)
	}
	rr := redis_rate.NewLimiter(rdb)
	rrLimit := redis_rate.Limit{Rate: 1_000_000, Burst: 1_000_000, Period: 1e9}
	ulStore, err := ulredis.NewStoreWithOptions(rdb, ulule.StoreOptions{Prefix: "ul"})
	if err != nil {
		b.Fatal(err)
	}
	ul := ulule.New(ulStore, ulule.Rate{Period: 1e9, Limit: 1_000_000})
	thStore, err := goredisstore.NewCtx(rdb, "th:")
	if err != nil {
		b.Fatal(err)
	}
	th, err := throttled.NewGCRARateLimiterCtx(thStore, throttled.RateQuota{MaxRate: throttled.PerSec(1_000_000), MaxBurst: 999_999})
	if err != nil {
		b.Fatal(err)
	}
	return []redisImpl{
		{"levqor", func(k string) error { _, err := lv.Allow(ctx, k); return err }},
		{"redis_rate", func(k string) error { _, err := rr.Allow(ctx, k, rrLimit); return err }},
		{"ulule", func(k string) error { _, err := ul.Get(ctx, k); return err }},
		{"throttled", func(k string) error { _, _, err := th.RateLimitCtx(ctx, k, 1); return err }},
	}
}

// BenchmarkRedisLimiter compares Redis-backed limiters against one real
// redis-server on loopback, serially and with 32 goroutines, on the
// allowed path (each decision is one round trip for every implementation).
func BenchmarkRedisLimiter(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	defer rdb.Close()
	for _, im := range redisLimiters(b, rdb) {
		b.Run(im.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			before := serverTime(b, rdb)
			for b.Loop() {
				if err := im.allow("serial"); err != nil {
					b.Fatal(err)
				}
			}
			serverTime(b, rdb).since(before).report(b, b.N)
		})
		for _, hot := range []bool{false, true} {
			name := "/parallel-32"
			if hot {
				name = "/parallel-32-hot-key"
			}
			b.Run(im.name+name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(16) // 16 × GOMAXPROCS (2) = 32 goroutines
				before := serverTime(b, rdb)
				var n, failed atomic.Int64
				var firstErr atomic.Value
				b.RunParallel(func(pb *testing.PB) {
					key := "p" + strconv.Itoa(int(n.Add(1)))
					if hot {
						key = "hot"
					}
					for pb.Next() {
						if err := im.allow(key); err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						}
					}
				})
				serverTime(b, rdb).since(before).report(b, b.N)
				// A peer that gives up under contention (ulule's optimistic
				// retry loop does on a hot key) is measured, not aborted:
				// its failed decisions are reported per op. Levqor's limiter
				// must never fail here.
				b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
				if f := failed.Load(); f > 0 {
					if im.name == "levqor" {
						b.Fatalf("%d decisions failed: %v", f, firstErr.Load())
					}
					b.Logf("%d of %d decisions failed: %v", f, b.N, firstErr.Load())
				}
			})
		}
	}
}

// BenchmarkRedisLimiterSerialTurns measures the serial pattern as a
// ratio: Levqor, redis_rate and ulule take turns, 500 decisions each,
// until each has made b.N (rounded up to whole turns), the order rotating
// every turn. A serial round trip here is mostly the time the two
// processes take to wake each other, which drifts by ±20% between runs
// and within one; taking turns puts the same drift on every limiter, so
// the ratio is steadier than between BenchmarkRedisLimiter's sub-benchmarks
// run one after another. Reports each limiter's ns per decision and
// levqor÷best (Levqor's ns per decision over the faster peer's; below 1
// is faster). The ns/op the framework prints covers all three.
func BenchmarkRedisLimiterSerialTurns(b *testing.B) {
	const turn = 500
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	defer rdb.Close()
	impls := redisLimiters(b, rdb)[:3] // levqor, redis_rate, ulule
	spent := make([]time.Duration, len(impls))
	turns := (b.N + turn - 1) / turn
	for t := range turns {
		for j := range impls {
			i := (j + t) % len(impls)
			start := time.Now()
			for range turn {
				if err := impls[i].allow("serial"); err != nil {
					b.Fatal(err)
				}
			}
			spent[i] += time.Since(start)
		}
	}
	per := func(i int) float64 { return float64(spent[i].Nanoseconds()) / float64(turns*turn) }
	for i, im := range impls {
		b.ReportMetric(per(i), im.name+"-ns/op")
	}
	b.ReportMetric(per(0)/min(per(1), per(2)), "levqor÷best")
}

// redisCost is what Redis has spent so far: CPU time of the redis-server
// process (INFO cpu: commands, networking, everything) and time in
// scripts (INFO commandstats: EVAL, EVALSHA and FCALL; their time includes
// the commands a script calls, which commandstats also counts under their
// own names, so summing every line would count those twice).
type redisCost struct{ cpuSec, scriptUsec float64 }

func serverTime(b *testing.B, rdb *redis.Client) redisCost {
	info, err := rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var c redisCost
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch name {
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(stats, 64)
			c.cpuSec += f
		case "cmdstat_eval", "cmdstat_evalsha", "cmdstat_fcall":
			for _, kv := range strings.Split(stats, ",") {
				if v, ok := strings.CutPrefix(kv, "usec="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					c.scriptUsec += f
				}
			}
		}
	}
	return c
}

func (c redisCost) since(before redisCost) redisCost {
	return redisCost{c.cpuSec - before.cpuSec, c.scriptUsec - before.scriptUsec}
}

// report puts Redis's cost per decision beside the client's ns/op.
// throttled also sends plain commands (TIME, GET, SETNX) outside its
// script: they count in redis-cpu-µs/op only.
func (c redisCost) report(b *testing.B, decisions int) {
	b.ReportMetric(c.cpuSec*1e6/float64(decisions), "redis-cpu-µs/op")
	b.ReportMetric(c.scriptUsec/float64(decisions), "script-µs/op")
}
