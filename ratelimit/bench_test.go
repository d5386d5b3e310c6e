package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "198.51." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + "#" + strconv.Itoa(i)
	}
	return out
}

// BenchmarkMemory covers one hot key, 10,000 keys and 1,000,000 distinct
// keys, serial and parallel, on the allowed path (a rate too high to deny)
// and the denied path (60/min, burst spent).
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	for _, pattern := range []struct {
		name string
		keys []string
	}{
		{"hot-key", []string{"hot"}},
		{"10k-keys", keys(10_000)},
		{"1M-keys", keys(1_000_000)},
	} {
		for _, path := range []struct {
			name string
			rate ratelimit.Rate
		}{
			{"allowed", ratelimit.PerSecond(1_000_000)},
			{"denied", ratelimit.PerMinute(60)},
		} {
			m := newMemory(b, ratelimit.MemoryConfig{Rate: path.rate})
			for _, k := range pattern.keys { // every key exists: measure decisions, not inserts
				for range 61 {
					_, _ = m.Allow(ctx, k)
				}
			}
			pick := func(i int) string { return pattern.keys[i%len(pattern.keys)] }
			b.Run(pattern.name+"/"+path.name+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					_, _ = m.Allow(ctx, pick(i))
					i++
				}
			})
			b.Run(pattern.name+"/"+path.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1)) * 7919
					for pb.Next() {
						_, _ = m.Allow(ctx, pick(i))
						i++
					}
				})
			})
		}
	}
}

// BenchmarkMemoryBytesPerKey reports the heap the limiter holds per key
// after one request for each of 1,000,000 keys. The keys themselves were
// allocated before the measurement; the limiter keeps only their hashes.
func BenchmarkMemoryBytesPerKey(b *testing.B) {
	ks := keys(1_000_000)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
		for _, k := range ks {
			m.AllowAt(k, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(len(ks)), "bytes/key")
		runtime.KeepAlive(m)
		_ = m.Close()
	}
}

func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	l := newRedis(b, ratelimit.RedisConfig{Client: redisClient(b, srv), Rate: ratelimit.PerSecond(1_000_000)})
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Allow(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel-32", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 goroutines
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := "k" + strconv.Itoa(int(n.Add(1)))
			for pb.Next() {
				if _, err := l.Allow(ctx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMemoryFull: a decision for a new key when every shard is full
// (100,000 keys, none idle): the new key takes another's place after a
// look at a few keys, not a sweep of the shard.
func BenchmarkMemoryFull(b *testing.B) {
	m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60), MaxKeys: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	now := time.Now()
	for i := range 100_000 {
		m.AllowAt("old "+strconv.Itoa(i), now)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !m.AllowAt(strconv.Itoa(i), now).Allowed {
			b.Fatal("a new key was refused")
		}
	}
	if n := m.Len(); n > 100_000 {
		b.Fatalf("%d keys held, cap 100,000", n)
	}
}
