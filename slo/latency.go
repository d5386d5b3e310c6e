package slo

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Latency histogram: bucket 0 counts latencies up to minLatency, bucket i
// those in (bound[i-1], bound[i]], bounds growing by 25% from 1µs to about
// 65 minutes (maxLatency); the last bucket is open-ended.
const (
	latencyBuckets = 101
	// MinLatency and MaxLatency bound where Percentiles is accurate: within
	// 25% of the exact quantile for latencies in [MinLatency, MaxLatency].
	// Below, a quantile is reported as at most MinLatency; above, as
	// MaxLatency.
	MinLatency = time.Microsecond
)

var latencyBounds = func() (b [latencyBuckets - 1]time.Duration) {
	v := float64(MinLatency)
	for i := range b {
		b[i] = time.Duration(v)
		v *= 1.25
	}
	return b
}()

// MaxLatency is the top of the histogram (about 65 minutes).
var MaxLatency = latencyBounds[len(latencyBounds)-1]

type latencyRing struct {
	mu    sync.Mutex
	slots []latencySlot
}

type latencySlot struct {
	idx    atomic.Int64
	counts [latencyBuckets]atomic.Uint64
}

func newLatencyRing(n int) latencyRing {
	slots := make([]latencySlot, n)
	for i := range slots {
		slots[i].idx.Store(unused)
	}
	return latencyRing{slots: slots}
}

func (r *latencyRing) add(idx int64, d time.Duration) {
	s := &r.slots[slotOf(idx, len(r.slots))]
	if s.idx.Load() != idx {
		r.mu.Lock()
		if s.idx.Load() != idx {
			for i := range s.counts {
				s.counts[i].Store(0)
			}
			s.idx.Store(idx)
		}
		r.mu.Unlock()
	}
	b, _ := slices.BinarySearch(latencyBounds[:], d)
	s.counts[b].Add(1)
}

func (r *latencyRing) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.slots {
		r.slots[i].idx.Store(unused)
	}
}

// Percentiles returns latency quantiles (e.g. 0.5, 0.95, 0.99) over the
// LatencyWindow, interpolated inside histogram buckets that are 25% wide:
// each is within 25% of the exact quantile when it lies between
// MinLatency (1µs) and MaxLatency (about 65 minutes); outside that range
// it is clamped to it. ok is false when no latency was observed in the
// window.
func (t *Tracker) Percentiles(qs ...float64) (ds []time.Duration, ok bool) {
	r := &t.lat
	idx := floorDiv(t.cfg.Now().Unix(), 60)
	var counts [latencyBuckets]uint64
	var total uint64
	for i := range int64(len(r.slots)) {
		s := &r.slots[slotOf(idx-i, len(r.slots))]
		if s.idx.Load() != idx-i {
			continue
		}
		for b := range counts {
			c := s.counts[b].Load()
			counts[b] += c
			total += c
		}
	}
	if total == 0 {
		return nil, false
	}
	out := make([]time.Duration, len(qs))
	for i, q := range qs {
		out[i] = quantile(counts[:], total, min(max(q, 0), 1))
	}
	return out, true
}

// quantile returns the q-quantile of the histogram.
func quantile(counts []uint64, total uint64, q float64) time.Duration {
	rank := q * float64(total)
	var seen uint64
	for b, c := range counts {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		lo, hi := time.Duration(0), MaxLatency
		if b > 0 {
			lo = latencyBounds[b-1]
		}
		if b < len(latencyBounds) {
			hi = latencyBounds[b]
		}
		frac := (rank - float64(seen)) / float64(c)
		return time.Duration(math.Round(float64(lo) + frac*float64(hi-lo)))
	}
	return MaxLatency
}
