package bench

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	allow func(key string) (allowed bool, err error)
}

// generous is a rate no benchmark exhausts; stingy allows one decision
// per key per hour, so every later one on that key is denied.
var (
	generous = benchRate{limit: 1_000_000, period: time.Second}
	stingy   = benchRate{limit: 1, period: time.Hour}
)

type benchRate struct {
	limit  int
	period time.Duration
}

// startRedis starts a redis-server for b and returns a client on it, with
// a pool large enough for the parallel benchmarks' 32 goroutines; both
// stop when b ends.
func startRedis(b *testing.B) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(b).Addr(), PoolSize: 64})
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// redisLimiters builds Levqor's Redis limiter and its peers on rdb, each
// with its own key prefix, allowing r.limit decisions per r.period per key
// (as the burst too).
func redisLimiters(b *testing.B, rdb *redis.Client, r benchRate) []redisImpl {
	rr := redis_rate.NewLimiter(rdb)
	rrLimit := redis_rate.Limit{Rate: r.limit, Burst: r.limit, Period: r.period}
	ulStore, err := ulredis.NewStoreWithOptions(rdb, ulule.StoreOptions{Prefix: "ul"})
	if err != nil {
		b.Fatal(err)
	}
	ul := ulule.New(ulStore, ulule.Rate{Period: r.period, Limit: int64(r.limit)})
	thStore, err := goredisstore.NewCtx(rdb, "th:")
	if err != nil {
		b.Fatal(err)
	}
	th, err := throttled.NewGCRARateLimiterCtx(thStore, throttled.RateQuota{MaxRate: throttled.PerDuration(r.limit, r.period), MaxBurst: r.limit - 1})
	if err != nil {
		b.Fatal(err)
	}
	return []redisImpl{
		levqorLimiter(b, rdb, r, 0),
		{"redis_rate", func(k string) (bool, error) {
			res, err := rr.Allow(ctx, k, rrLimit)
			return err == nil && res.Allowed > 0, err
		}},
		{"ulule", func(k string) (bool, error) { res, err := ul.Get(ctx, k); return err == nil && !res.Reached, err }},
		{"throttled", func(k string) (bool, error) { limited, _, err := th.RateLimitCtx(ctx, k, 1); return !limited, err }},
	}
}

// levqorLimiter is Levqor's Redis limiter on rdb as redisLimiters builds
// it, remembering deniedKeys denied keys (0: the default).
func levqorLimiter(b *testing.B, rdb *redis.Client, r benchRate, deniedKeys int) redisImpl {
	lv, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: rdb, Rate: ratelimit.Rate{Limit: r.limit, Period: r.period, Burst: r.limit}, Prefix: "lv:", DeniedKeys: deniedKeys})
	if err != nil {
		b.Fatal(err)
	}
	return redisImpl{"levqor", func(k string) (bool, error) { res, err := lv.Allow(ctx, k); return res.Allowed, err }}
}

// BenchmarkRedisLimiter compares Redis-backed limiters against one real
// redis-server on loopback, serially and with 32 goroutines, on the
// allowed path (each decision is one round trip for every implementation).
func BenchmarkRedisLimiter(b *testing.B) {
	rdb := startRedis(b)
	for _, im := range redisLimiters(b, rdb, generous) {
		b.Run(im.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			before := serverTime(b, rdb)
			for b.Loop() {
				if ok, err := im.allow("serial"); err != nil || !ok {
					b.Fatalf("allowed %v, error %v; want allowed", ok, err)
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
				var n, failed, denied atomic.Int64
				var firstErr atomic.Value
				b.RunParallel(func(pb *testing.PB) {
					key := "p" + strconv.Itoa(int(n.Add(1)))
					if hot {
						key = "hot"
					}
					for pb.Next() {
						ok, err := im.allow(key)
						switch {
						case err != nil:
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						case !ok:
							denied.Add(1)
						}
					}
				})
				serverTime(b, rdb).since(before).report(b, b.N)
				if d := denied.Load(); d > 0 { // the rate is generous: not the path measured
					b.Fatalf("%d of %d decisions denied", d, b.N)
				}
				// A peer that gives up under contention (throttled's optimistic
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
// run one after another. "allowed" decides on a key with budget to spare;
// "denied" on a key whose budget is spent (the path abusive traffic
// takes), where Levqor answers every denial after the first without a
// round trip; "denied-asking-redis" the same with Levqor remembering no
// denied key (DeniedKeys -1), so that each denial runs its script. Reports each limiter's ns and CPU time (client and
// redis-server) per decision, and levqor÷best (Levqor's ns per decision
// over the faster peer's; below 1 is faster). The ns/op the framework
// prints covers all three and the INFO calls between turns.
func BenchmarkRedisLimiterSerialTurns(b *testing.B) {
	for _, c := range []struct {
		name       string
		rate       benchRate
		deniedKeys int // Levqor's RedisConfig.DeniedKeys
	}{
		{"allowed", generous, 0},
		{"denied", stingy, 0},
		{"denied-asking-redis", stingy, -1},
	} {
		allowed := c.rate == generous
		b.Run(c.name, func(b *testing.B) {
			rdb := startRedis(b)
			impls := redisLimiters(b, rdb, c.rate)[:3] // levqor, redis_rate, ulule
			impls[0] = levqorLimiter(b, rdb, c.rate, c.deniedKeys)
			const key = "serial"
			if !allowed {
				for _, im := range impls { // spend the budget
					if _, err := im.allow(key); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			ns := serialTurns(b, rdb, impls, key, allowed)
			b.ReportMetric(ns[0]/min(ns[1], ns[2]), "levqor÷best")
		})
	}
}

// BenchmarkRedisLimiterSerialFloor bounds what any script can do serially
// on the allowed path: beside Levqor and ulule, taking turns the same
// way, four scripts that decide nothing (floorScripts). Reports each
// one's ns per decision over ulule's. Serially each command a script calls
// costs Redis a few µs of CPU, far more than hot, so the floor of an exact
// GCRA is about level with ulule's two commands, INCRBY and PTTL.
func BenchmarkRedisLimiterSerialFloor(b *testing.B) {
	rdb := startRedis(b)
	peers := redisLimiters(b, rdb, generous)
	impls := append([]redisImpl{peers[0], peers[2]}, floorScripts(rdb)...) // levqor, ulule, scripts
	b.ResetTimer()
	ns := serialTurns(b, rdb, impls, "serial", true)
	for i, im := range impls {
		if im.name != "ulule" {
			b.ReportMetric(ns[i]/ns[1], im.name+"÷ulule")
		}
	}
}

// BenchmarkRedisLimiterSerialOptimistic measures a design Levqor did not
// adopt, taking turns with Levqor and ulule: exact GCRA for one request
// in two commands on an idle key, by writing first (TIME, then SET … GET
// KEEPTTL of the TAT an idle key would get) and mending after (a second
// SET when the key turns out busy, PEXPIREAT for a new key or span).
// Reports optimistic÷ulule and levqor÷ulule, ns per decision.
func BenchmarkRedisLimiterSerialOptimistic(b *testing.B) {
	rdb := startRedis(b)
	peers := redisLimiters(b, rdb, generous)
	arg := rateArg(generous)
	optimistic := redisImpl{"optimistic", func(k string) (bool, error) {
		v, err := optimisticScript.Run(ctx, rdb, []string{"opt:" + k}, arg).Int64()
		return v > 0, err
	}}
	impls := []redisImpl{peers[0], peers[2], optimistic} // levqor, ulule, optimistic
	b.ResetTimer()
	ns := serialTurns(b, rdb, impls, "serial", true)
	b.ReportMetric(ns[0]/ns[1], "levqor÷ulule")
	b.ReportMetric(ns[2]/ns[1], "optimistic÷ulule")
}

// rateArg is ARGV[1] of optimisticScript and clientClockScript for r (as
// the burst too): interval and burst window µs, 8 bytes each,
// little-endian.
func rateArg(r benchRate) string {
	interval, tau := int64(r.period/time.Microsecond)/int64(r.limit), int64(r.period/time.Microsecond)
	return string(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(interval)), uint64(tau)))
}

// optimisticScript decides one request like Levqor's script (same key
// format, spans and reply: reset µs if allowed, -reset-1 if not), but
// writes before it reads. ARGV[1]: rateArg.
var optimisticScript = redis.NewScript(`
local interval, tau = struct.unpack('<i8i8', ARGV[1])
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
` + optimisticDecision)

// clientClockScript is optimisticScript on the client's clock: ARGV[2] is
// now, Unix µs, 8 bytes little-endian, and no TIME is called.
var clientClockScript = redis.NewScript(`
local interval, tau = struct.unpack('<i8i8', ARGV[1])
local now = struct.unpack('<i8', ARGV[2])
` + optimisticDecision)

// optimisticDecision is both scripts' decision, once now is known.
const optimisticDecision = `local tat = now + interval
local span = tau
if span > 60000000 then span = 60000000 end
local cell = tat - tat % span
local old = redis.call('SET', KEYS[1], struct.pack('<i8', tat), 'GET', 'KEEPTTL')
if not old then
  redis.call('PEXPIREAT', KEYS[1], math.ceil((cell + 2 * span) / 1000))
  return interval
end
local stored = struct.unpack('<i8', old)
if stored <= now then
  if stored - stored % span ~= cell then redis.call('PEXPIREAT', KEYS[1], math.ceil((cell + 2 * span) / 1000)) end
  return interval
end
local newTat = stored + interval
if newTat > now + tau then
  redis.call('SET', KEYS[1], old, 'KEEPTTL')
  return now - stored - 1
end
redis.call('SET', KEYS[1], struct.pack('<i8', newTat), 'PXAT', math.ceil((newTat - newTat % span + 2 * span) / 1000))
return newTat - now
`

// BenchmarkRedisLimiterSerialClientClock measures a second design Levqor
// did not adopt, taking turns with Levqor and ulule: the client sends its
// clock instead of the script reading Redis TIME (as a limiter would that
// follows Redis's clock by an offset measured now and then), which lets
// one command decide a request on an idle key: SET … GET KEEPTTL of the
// TAT an idle key gets (PEXPIREAT for a new key or span; a second SET
// when the key turns out busy): optimisticScript without TIME. Reports
// clientclock÷ulule and levqor÷ulule, ns per decision: the most any
// script can gain serially by leaving TIME out.
func BenchmarkRedisLimiterSerialClientClock(b *testing.B) {
	rdb := startRedis(b)
	peers := redisLimiters(b, rdb, generous)
	arg := rateArg(generous)
	clientClock := redisImpl{"clientclock", func(k string) (bool, error) {
		now := binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(time.Now().UnixMicro()))
		v, err := clientClockScript.Run(ctx, rdb, []string{"cc:" + k}, arg, string(now)).Int64()
		return v > 0, err
	}}
	impls := []redisImpl{peers[0], peers[2], clientClock} // levqor, ulule, client clock
	b.ResetTimer()
	ns := serialTurns(b, rdb, impls, "serial", true)
	b.ReportMetric(ns[0]/ns[1], "levqor÷ulule")
	b.ReportMetric(ns[2]/ns[1], "clientclock÷ulule")
}

// BenchmarkRedisSerialAlone runs Levqor, ulule and each floor script
// alone, serially, on a redis-server of its own, so that a profiler
// attached to that server (perf record -p) sees one of them only. Its
// ns/op drift between sub-benchmarks run one after another; compare them
// with BenchmarkRedisLimiterSerialFloor, not here.
func BenchmarkRedisSerialAlone(b *testing.B) {
	for _, name := range []string{"levqor", "ulule", "no-command", "time", "time-setget", "lua-loop"} {
		b.Run(name, func(b *testing.B) {
			rdb := startRedis(b)
			impls := append(redisLimiters(b, rdb, generous), floorScripts(rdb)...)
			i := slices.IndexFunc(impls, func(im redisImpl) bool { return im.name == name })
			if i < 0 {
				b.Fatalf("no limiter or script named %q", name)
			}
			im := impls[i]
			for b.Loop() {
				if ok, err := im.allow("serial"); err != nil || !ok {
					b.Fatalf("%s: allowed %v, error %v; want allowed", im.name, ok, err)
				}
			}
		})
	}
}

// floorScripts are four scripts that decide nothing: one calls no
// command, one calls TIME, one calls TIME and SET … GET KEEPTTL, the two
// commands exact GCRA on Redis's clock cannot do without for one allowed
// decision (read the clock; write the new TAT, reading the old), and one
// calls no command but loops in Lua for as long, hot, as those two
// commands take (about 1.6 µs over the empty script's on this machine):
// the control that tells a command's serial cost from its length.
func floorScripts(rdb *redis.Client) []redisImpl {
	var impls []redisImpl
	for _, f := range []struct{ name, body string }{
		{"no-command", `return 1`},
		{"time", `redis.call('TIME') return 1`},
		{"time-setget", `redis.call('TIME') redis.call('SET', KEYS[1], ARGV[1], 'GET', 'KEEPTTL') return 1`},
		{"lua-loop", `local x = 0 for i = 1, 250 do x = x + i end return 1`},
	} {
		script := redis.NewScript(f.body)
		impls = append(impls, redisImpl{f.name, func(k string) (bool, error) {
			v, err := script.Run(ctx, rdb, []string{f.name + ":" + k}, "12345678").Int64()
			return v == 1, err
		}})
	}
	return impls
}

// serialTurns runs the turns, each limiter 500 decisions at a time, the
// order rotating every turn, and reports, per limiter, the wall time,
// this process's CPU time (the client: go-redis, the limiter, the
// runtime, the kernel's share of its syscalls) and redis-server's CPU
// time per decision; it returns the wall ns per decision. INFO is read
// between turns, outside the timed part.
func serialTurns(b *testing.B, rdb *redis.Client, impls []redisImpl, key string, want bool) []float64 {
	const turn = 500
	type cost struct {
		wall, client time.Duration
		redisCPUSec  float64
	}
	costs := make([]cost, len(impls))
	turns := (b.N + turn - 1) / turn
	for t := range turns {
		for j := range impls {
			i := (j + t) % len(impls)
			before := serverTime(b, rdb)
			cpu0 := processCPU(b)
			start := time.Now()
			for range turn {
				if ok, err := impls[i].allow(key); err != nil || ok != want {
					b.Fatalf("%s: allowed %v, error %v; want allowed %v", impls[i].name, ok, err, want)
				}
			}
			costs[i].wall += time.Since(start)
			costs[i].client += processCPU(b) - cpu0
			costs[i].redisCPUSec += serverTime(b, rdb).since(before).cpuSec
		}
	}
	n := float64(turns * turn)
	ns := make([]float64, len(impls))
	for i, im := range impls {
		ns[i] = float64(costs[i].wall.Nanoseconds()) / n
		b.ReportMetric(ns[i], im.name+"-ns/op")
		b.ReportMetric(costs[i].client.Seconds()*1e6/n, im.name+"-client-cpu-µs/op")
		b.ReportMetric(costs[i].redisCPUSec*1e6/n, im.name+"-redis-cpu-µs/op")
	}
	return ns
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
