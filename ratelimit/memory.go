package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// Defaults for MemoryConfig.
const (
	DefaultShards        = 64
	DefaultSweepInterval = time.Minute
)

// MemoryConfig configures a Memory limiter.
type MemoryConfig struct {
	// Rate is the policy. Zero fields take the Rate defaults (60/min, burst 60).
	Rate Rate
	// Shards is the number of independently locked key maps, rounded up to a
	// power of two. Default DefaultShards (64).
	Shards int
	// MaxKeys caps the number of keys held (0: no cap). When a shard is full,
	// its idle keys are swept first; if it is still full, an arbitrary key of
	// that shard is forgotten, which only makes the limiter more permissive
	// for that key: a flood of new keys never locks out a new client.
	MaxKeys int
	// SweepInterval is how often a background goroutine drops idle keys.
	// Default DefaultSweepInterval (1m); negative disables it (call Sweep).
	SweepInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Memory is an in-process GCRA limiter. Each decision holds one shard's
// mutex, so it is exact under any contention. A key whose burst is full
// again carries no state and is dropped by the sweeper: memory is bounded by
// the keys active within one reset window (Burst × Period/Limit), see the
// package documentation for the measured bytes per key.
type Memory struct {
	rate     Rate
	interval int64 // µs
	burst    int64
	shards   []memShard
	mask     uint64
	seed     maphash.Seed
	perShard int // key cap per shard, 0 for none
	now      func() time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memShard struct {
	mu  sync.Mutex
	tat map[string]int64 // theoretical arrival time, µs since the Unix epoch
	_   [48]byte         // keep shards on separate cache lines
}

var _ Limiter = (*Memory)(nil)

// NewMemory validates cfg and starts the sweeper; Close stops it.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	rate := cfg.Rate.withDefaults()
	if err := rate.validate(); err != nil {
		return nil, err
	}
	if cfg.Shards < 0 || cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("ratelimit: Shards and MaxKeys must not be negative")
	}
	if cfg.Shards == 0 {
		cfg.Shards = DefaultShards
	}
	n := 1
	for n < cfg.Shards {
		n <<= 1
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Memory{
		rate:     rate,
		interval: rate.interval(),
		burst:    int64(rate.Burst),
		shards:   make([]memShard, n),
		mask:     uint64(n - 1),
		seed:     maphash.MakeSeed(),
		now:      cfg.Now,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.MaxKeys > 0 {
		m.perShard = max(1, cfg.MaxKeys/n)
	}
	for i := range m.shards {
		m.shards[i].tat = make(map[string]int64)
	}
	if cfg.SweepInterval < 0 {
		close(m.done)
	} else {
		go m.sweeper(cfg.SweepInterval)
	}
	return m, nil
}

// Rate implements Limiter.
func (m *Memory) Rate() Rate { return m.rate }

// Allow implements Limiter. It never returns an error.
func (m *Memory) Allow(_ context.Context, key string) (Result, error) {
	return m.AllowAt(key, m.now()), nil
}

// AllowAt decides for key at the given time; tests use it with fixed times.
func (m *Memory) AllowAt(key string, now time.Time) Result {
	us := now.UnixMicro()
	s := &m.shards[maphash.String(m.seed, key)&m.mask]
	s.mu.Lock()
	tat, known := s.tat[key]
	res, newTat := gcra(tat, us, m.interval, m.burst)
	if res.Allowed { // a denial changes nothing
		if !known {
			m.makeRoom(s, us)
			key = strings.Clone(key) // do not pin the caller's larger string
		}
		s.tat[key] = newTat
	}
	s.mu.Unlock()
	return res
}

// makeRoom enforces MaxKeys before a new key is added; s.mu is held.
func (m *Memory) makeRoom(s *memShard, now int64) {
	if m.perShard == 0 || len(s.tat) < m.perShard {
		return
	}
	sweepShard(s, now)
	for k := range s.tat {
		if len(s.tat) < m.perShard {
			return
		}
		delete(s.tat, k)
	}
}

func sweepShard(s *memShard, now int64) int {
	n := 0
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
			n++
		}
	}
	return n
}

// Sweep drops every key whose burst is full again at now (it would behave
// exactly as an unknown key) and reports how many it dropped.
func (m *Memory) Sweep(now time.Time) int {
	us := now.UnixMicro()
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += sweepShard(s, us)
		s.mu.Unlock()
	}
	return n
}

// Len reports the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

func (m *Memory) sweeper(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep(m.now())
		}
	}
}

// Close stops the sweeper and waits for it. Safe to call more than once.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}
