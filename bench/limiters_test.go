package bench

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sethvargo "github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	throttledmem "github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ulmem "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/levqor/levqor/ratelimit"
)

// spec is the policy a benchmark runs under: n requests per period.
type spec struct {
	n      int
	period time.Duration
}

var (
	// allowed: a rate too high for any benchmark to exhaust.
	allowed = spec{1_000_000, time.Second}
	// denied: one per hour, spent during setup.
	denied = spec{1, time.Hour}
)

// allowFunc decides one request for key.
type allowFunc func(key string) bool

type impl struct {
	name string
	make func(b testing.TB, s spec, maxKeys int) allowFunc
}

var ctx = context.Background()

var impls = []impl{
	{"levqor", func(b testing.TB, s spec, _ int) allowFunc {
		m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Limit: s.n, Period: s.period, Burst: s.n}, SweepInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return func(k string) bool { r, _ := m.Allow(ctx, k); return r.Allowed }
	}},
	{"x-time-rate", func(b testing.TB, s spec, _ int) allowFunc {
		// The usual pattern: one *rate.Limiter per key in a sync.Map.
		var m sync.Map
		lim := rate.Limit(float64(s.n) / s.period.Seconds())
		return func(k string) bool {
			v, ok := m.Load(k)
			if !ok {
				v, _ = m.LoadOrStore(k, rate.NewLimiter(lim, s.n))
			}
			return v.(*rate.Limiter).Allow()
		}
	}},
	{"sethvargo", func(b testing.TB, s spec, _ int) allowFunc {
		st, err := sethvargo.New(&sethvargo.Config{Tokens: uint64(s.n), Interval: s.period, SweepInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close(ctx) })
		return func(k string) bool { _, _, _, ok, _ := st.Take(ctx, k); return ok }
	}},
	{"ulule", func(b testing.TB, s spec, _ int) allowFunc {
		l := ulule.New(ulmem.NewStore(), ulule.Rate{Period: s.period, Limit: int64(s.n)})
		return func(k string) bool { c, _ := l.Get(ctx, k); return !c.Reached }
	}},
	{"throttled", func(b testing.TB, s spec, maxKeys int) allowFunc {
		st, err := throttledmem.NewCtx(maxKeys)
		if err != nil {
			b.Fatal(err)
		}
		r := throttled.PerSec(s.n)
		if s.period == time.Hour {
			r = throttled.PerHour(s.n)
		}
		// throttled's burst counts requests beyond the first.
		rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: r, MaxBurst: s.n - 1})
		if err != nil {
			b.Fatal(err)
		}
		return func(k string) bool { limited, _, _ := rl.RateLimitCtx(ctx, k, 1); return !limited }
	}},
}

var keyCache sync.Map

func keys(n int) []string {
	if v, ok := keyCache.Load(n); ok {
		return v.([]string)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "203.0." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + "/" + strconv.Itoa(i)
	}
	keyCache.Store(n, out)
	return out
}

// BenchmarkMemoryLimiter: each implementation on one hot key, 10,000 keys
// and 1,000,000 distinct keys, allowed and denied paths, serial and
// parallel. Every key exists before timing starts.
func BenchmarkMemoryLimiter(b *testing.B) {
	for _, pattern := range []struct {
		name string
		n    int
	}{{"hot-key", 1}, {"10k-keys", 10_000}, {"1M-keys", 1_000_000}} {
		for _, path := range []struct {
			name string
			s    spec
		}{{"allowed", allowed}, {"denied", denied}} {
			for _, im := range impls {
				// Setup runs inside b.Run, so a -bench filter skips it too.
				b.Run(pattern.name+"/"+path.name+"/"+im.name, func(b *testing.B) {
					ks := keys(pattern.n)
					allow := im.make(b, path.s, 2*pattern.n+16)
					for _, k := range ks {
						allow(k)
						allow(k) // denied path: the one token is spent
					}
					b.Run("serial", func(b *testing.B) {
						b.ReportAllocs()
						i := 0
						for b.Loop() {
							allow(ks[i%len(ks)])
							i++
						}
					})
					b.Run("parallel", func(b *testing.B) {
						b.ReportAllocs()
						var seed atomic.Int64
						b.RunParallel(func(pb *testing.PB) {
							i := int(seed.Add(1)) * 7919
							for pb.Next() {
								allow(ks[i%len(ks)])
								i++
							}
						})
					})
					runtime.GC()
				})
			}
		}
	}
}

// BenchmarkBytesPerKey reports the heap each implementation holds per key
// after one request for each of 1,000,000 keys. The key strings were
// allocated before the measurement, so they are not counted; limiters that
// keep the caller's string (all but Levqor, which keeps a 64-bit hash)
// also keep those bytes alive (about 20 per key here).
func BenchmarkBytesPerKey(b *testing.B) {
	ks := keys(1_000_000)
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				allow := im.make(b, allowed, 2_000_000)
				for _, k := range ks {
					allow(k)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e6, "bytes/key")
				runtime.KeepAlive(allow)
			}
		})
	}
}
