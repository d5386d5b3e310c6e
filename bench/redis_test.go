package bench

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

// BenchmarkRedisLimiter compares Redis-backed limiters against one real
// redis-server on loopback, serially and with 32 goroutines, on the
// allowed path (each decision is one round trip for every implementation).
func BenchmarkRedisLimiter(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	defer rdb.Close()

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
	for _, im := range []struct {
		name  string
		allow func(key string) error
	}{
		{"levqor", func(k string) error { _, err := lv.Allow(ctx, k); return err }},
		{"redis_rate", func(k string) error { _, err := rr.Allow(ctx, k, rrLimit); return err }},
		{"ulule", func(k string) error { _, err := ul.Get(ctx, k); return err }},
		{"throttled", func(k string) error { _, _, err := th.RateLimitCtx(ctx, k, 1); return err }},
	} {
		b.Run(im.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			resetStats(b, rdb)
			for b.Loop() {
				if err := im.allow("serial"); err != nil {
					b.Fatal(err)
				}
			}
			reportServerTime(b, rdb)
		})
		for _, hot := range []bool{false, true} {
			name := "/parallel-32"
			if hot {
				name = "/parallel-32-hot-key"
			}
			b.Run(im.name+name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(16) // 16 × GOMAXPROCS (2) = 32 goroutines
				resetStats(b, rdb)
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
				reportServerTime(b, rdb)
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

func resetStats(b *testing.B, rdb *redis.Client) {
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
}

// reportServerTime reports the Redis server's own time per decision
// (INFO commandstats: every command's usec, summed, over b.N), beside the
// client's ns/op.
func reportServerTime(b *testing.B, rdb *redis.Client) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var usec float64
	for _, line := range strings.Split(info, "\n") {
		_, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_config") {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				f, _ := strconv.ParseFloat(v, 64)
				usec += f
			}
		}
	}
	b.ReportMetric(usec/float64(b.N), "redis-µs/op")
}
