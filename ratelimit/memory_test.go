package ratelimit_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/ratelimit"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newMemory(t testing.TB, cfg ratelimit.MemoryConfig) *ratelimit.Memory {
	t.Helper()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1 // tests sweep explicitly
	}
	m, err := ratelimit.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMemoryDecisions(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.Rate{Limit: 60, Period: time.Minute, Burst: 3}})
	type step struct {
		at         time.Duration
		allowed    bool
		remaining  int
		retryAfter time.Duration
		resetAfter time.Duration
	}
	for i, s := range []step{
		{0, true, 2, 0, 1 * time.Second},
		{0, true, 1, 0, 2 * time.Second},
		{0, true, 0, 0, 3 * time.Second},
		{0, false, 0, 1 * time.Second, 3 * time.Second},
		{500 * time.Millisecond, false, 0, 500 * time.Millisecond, 2500 * time.Millisecond},
		{time.Second, true, 0, 0, 3 * time.Second},
		{10 * time.Second, true, 2, 0, 1 * time.Second}, // idle: full burst again
	} {
		got := m.AllowAt("k", t0.Add(s.at))
		want := ratelimit.Result{Allowed: s.allowed, Limit: 3, Remaining: s.remaining, RetryAfter: s.retryAfter, ResetAfter: s.resetAfter}
		if got != want {
			t.Fatalf("step %d at +%v: got %+v, want %+v", i, s.at, got, want)
		}
	}
	if r := m.AllowAt("other", t0); !r.Allowed || r.Remaining != 2 {
		t.Fatalf("keys are not independent: %+v", r)
	}
}

// TestMemoryExactUnderContention: 8 goroutines hammer one key; within each
// simulated instant the admitted count must equal the budget exactly.
func TestMemoryExactUnderContention(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60)})
	windows := []struct {
		at   time.Duration
		want int64
	}{
		{0, 60},                // the full burst
		{0, 0},                 // nothing more at the same instant
		{30 * time.Second, 30}, // half a minute refills 30
		{30*time.Second + 999*time.Millisecond, 0},
		{31 * time.Second, 1},
		{10 * time.Minute, 60}, // idle: full burst, never more
	}
	for _, w := range windows {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 500 {
					if m.AllowAt("hot", t0.Add(w.at)).Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := admitted.Load(); got != w.want {
			t.Fatalf("at +%v: admitted %d, want exactly %d", w.at, got, w.want)
		}
	}
}

func TestMemoryEvictsIdleKeys(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60)})
	for i := range 10_000 {
		m.AllowAt(fmt.Sprint("key-", i), t0)
	}
	m.AllowAt("busy", t0)
	m.AllowAt("busy", t0)
	if n := m.Len(); n != 10_001 {
		t.Fatalf("Len = %d, want 10001", n)
	}
	if n := m.Sweep(t0.Add(999 * time.Millisecond)); n != 0 {
		t.Fatalf("swept %d keys whose burst is not yet full", n)
	}
	// One request at 60/min is paid back after 1s: those keys are idle.
	if n := m.Sweep(t0.Add(time.Second)); n != 10_000 {
		t.Fatalf("swept %d, want 10000", n)
	}
	if n := m.Len(); n != 1 {
		t.Fatalf("Len after sweep = %d, want 1 (the busy key)", n)
	}
	// A swept key behaves exactly like a fresh one.
	if r := m.AllowAt("key-1", t0.Add(time.Second)); !r.Allowed || r.Remaining != 59 {
		t.Fatalf("swept key: %+v", r)
	}
}

func TestMemorySweeperGoroutine(t *testing.T) {
	m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.PerSecond(1000), SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = m.Allow(context.Background(), "k")
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweeper did not drop the idle key")
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryMaxKeys(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60), MaxKeys: 256})
	for i := range 100_000 {
		if !m.AllowAt(fmt.Sprint("flood-", i), t0).Allowed {
			t.Fatalf("new key %d refused: a full map must never lock out a new client", i)
		}
	}
	if n := m.Len(); n > 256 {
		t.Fatalf("Len = %d, cap is 256", n)
	}
}

// TestMemoryFullPrefersIdleKeys: a new key in a full shard takes an idle
// key's place while there is one, never the busy key's.
func TestMemoryFullPrefersIdleKeys(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60), Shards: 1, MaxKeys: 64})
	for i := range 63 {
		m.AllowAt(fmt.Sprint("idle-", i), t0)
	}
	for range 30 {
		m.AllowAt("busy", t0)
	}
	later := t0.Add(time.Second) // one request at 60/min is paid back: the others are idle
	for i := range 40 {
		m.AllowAt(fmt.Sprint("new-", i), later)
		if n := m.Len(); n > 64 {
			t.Fatalf("Len = %d, cap is 64", n)
		}
	}
	fresh := m.AllowAt("never-seen", later).Remaining
	if r := m.AllowAt("busy", later); r.Remaining >= fresh {
		t.Fatalf("the busy key was forgotten: %+v (a new key has %d left)", r, fresh)
	}
}

func TestMemoryZeroAllocs(t *testing.T) {
	m := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerSecond(1_000_000)})
	ctx := context.Background()
	_, _ = m.Allow(ctx, "existing")
	if n := testing.AllocsPerRun(1000, func() { _, _ = m.Allow(ctx, "existing") }); n != 0 {
		t.Fatalf("Allow on an existing key allocates %v times", n)
	}
}

func TestRateConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.Rate
		ok   bool
	}{
		{"60/m", ratelimit.Rate{Limit: 60, Period: time.Minute, Burst: 60}, true},
		{"10/s:20", ratelimit.Rate{Limit: 10, Period: time.Second, Burst: 20}, true},
		{"100/10s", ratelimit.Rate{Limit: 100, Period: 10 * time.Second, Burst: 100}, true},
		{" 5/hour ", ratelimit.Rate{Limit: 5, Period: time.Hour, Burst: 5}, true},
		{"60", ratelimit.Rate{}, false},
		{"0/m", ratelimit.Rate{}, false},
		{"-1/m", ratelimit.Rate{}, false},
		{"x/m", ratelimit.Rate{}, false},
		{"60/fortnight", ratelimit.Rate{}, false},
		{"60/m:0", ratelimit.Rate{}, false},
		{"2000000/s", ratelimit.Rate{}, false},                                           // finer than 1µs
		{"1/h:876000", ratelimit.Rate{Limit: 1, Period: time.Hour, Burst: 876000}, true}, // refills in MaxResetWindow
		{"1/h:876001", ratelimit.Rate{}, false},
		{"1/s:9223372036854775807", ratelimit.Rate{}, false}, // Burst × interval overflowed int64
		{"1/9223372036854775807ns", ratelimit.Rate{}, false}, // one request per 292 years
	} {
		got, err := ratelimit.ParseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRate(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if _, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Limit: -1}}); err == nil {
		t.Error("negative limit accepted")
	}
	// Shards are allocated up front: past MaxShards is an error (math.MaxInt
	// used to loop forever rounding up to a power of two).
	for _, shards := range []int{-1, ratelimit.MaxShards + 1, math.MaxInt} {
		if _, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Shards: shards, SweepInterval: -1}); err == nil {
			t.Errorf("Shards %d accepted", shards)
		}
	}
	if m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Shards: ratelimit.MaxShards, SweepInterval: -1}); err != nil {
		t.Errorf("Shards MaxShards refused: %v", err)
	} else {
		_ = m.Close()
	}
	m := newMemory(t, ratelimit.MemoryConfig{})
	if r := m.Rate(); r != ratelimit.PerMinute(60) {
		t.Errorf("default rate = %+v, want 60/min burst 60", r)
	}
}
