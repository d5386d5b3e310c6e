package slo

import (
	"math"
	"sync"
	"sync/atomic"
)

// unused marks a slot never claimed. Time indexes (minutes or hours since
// the Unix epoch) may be negative: any time.Time is valid input.
const unused = math.MinInt64

// slotOf maps a time index to a slot, for negative indexes too.
func slotOf(idx int64, n int) int64 {
	m := idx % int64(n)
	if m < 0 {
		m += int64(n)
	}
	return m
}

// ring holds good/total counters for consecutive time slots (minutes or
// hours). A slot is claimed for a new time index under mu (once per slot
// per period); counting is atomic and lock-free.
type ring struct {
	mu    sync.Mutex
	slots []slot
}

type slot struct {
	idx         atomic.Int64 // time index; unused when never claimed
	good, total atomic.Uint64
}

func newRing(n int) ring {
	slots := make([]slot, n)
	for i := range slots {
		slots[i].idx.Store(unused)
	}
	return ring{slots: slots}
}

func (r *ring) claim(idx int64) *slot {
	s := &r.slots[slotOf(idx, len(r.slots))]
	if s.idx.Load() != idx {
		r.mu.Lock()
		if s.idx.Load() != idx {
			s.good.Store(0)
			s.total.Store(0)
			s.idx.Store(idx) // publish only after the reset
		}
		r.mu.Unlock()
	}
	return s
}

func (r *ring) add(idx int64, good bool) {
	s := r.claim(idx)
	if good {
		s.good.Add(1)
	}
	s.total.Add(1)
}

// sum adds the n slots ending at idx (inclusive).
func (r *ring) sum(idx int64, n int) (good, total uint64) {
	n = min(n, len(r.slots))
	for i := range int64(n) {
		s := &r.slots[slotOf(idx-i, len(r.slots))]
		if s.idx.Load() == idx-i {
			good += s.good.Load()
			total += s.total.Load()
		}
	}
	return good, total
}

func (r *ring) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.slots {
		r.slots[i].idx.Store(unused)
	}
}

// floorDiv divides rounding toward negative infinity, so times before
// 1970 fall in the right minute or hour.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
