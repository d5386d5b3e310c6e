package main

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
)

// DefaultHeapFloor is the heap the garbage collector may fill before it
// runs while the live heap is small: 16 MiB (README, GOGC under
// Configuration).
//
// Go's default (GOGC=100) collects when the heap reaches twice the live
// heap, and at least 4 MiB. levqor-server's live heap is about 1 MiB
// between requests and a request allocates about 3.4 KB (net/http's
// request, headers and response, and the chain), so under load the
// collector ran some 120 times a second, and its fixed cost per cycle
// (stopping and restarting the world, scanning every connection's stack)
// was some 6% of the server's CPU, allocation another 8%. With a 16 MiB
// floor it runs a sixth as often: 1–2 µs less CPU per /api/me (bench/README
// "GC heap floor"). Larger floors measured no better (a heap that no
// longer fits the cache). Once the live heap is half the floor or more,
// this is Go's default: the extra memory is at most the floor.
const DefaultHeapFloor = 16 << 20

// heapMinimum is the runtime's smallest heap goal at GOGC=100; it scales
// with GOGC, so a GC percent above floor/heapMinimum × 100 would raise the
// goal past the floor.
const heapMinimum = 4 << 20

// heapFloor keeps the collector's heap goal near floor bytes while the
// live heap is small, by setting the GC percent after each cycle from the
// live heap the cycle found: Go's own goal formula (live + (live + stacks
// + globals) × percent/100) solved for the floor, never below 100.
type heapFloor struct {
	floor uint64

	mu      sync.Mutex
	stopped bool
	percent int // last set
	samples []rtmetrics.Sample
}

// startHeapFloor starts the floor and returns its stop, which restores
// GOGC=100. A floor of 0 starts nothing. The GC percent is process-wide:
// start one per process (serve), never from a library or a test server.
func startHeapFloor(floor uint64) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	h := &heapFloor{floor: floor, percent: 100, samples: []rtmetrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
	}}
	h.adjust()
	h.arm()
	return h.stop
}

// arm runs afterCycle once the next collection finds a fresh object
// unreachable. The object is 32 bytes so the tiny allocator, which
// batches objects under 16 bytes, never keeps it alive with others.
func (h *heapFloor) arm() { runtime.AddCleanup(new([32]byte), (*heapFloor).afterCycle, h) }

func (h *heapFloor) afterCycle() {
	if h.adjust() {
		h.arm()
	}
}

// adjust sets the GC percent for the live heap the last cycle found and
// reports whether the floor is still on.
func (h *heapFloor) adjust() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	rtmetrics.Read(h.samples)
	var v [3]uint64
	for i, s := range h.samples {
		if s.Value.Kind() == rtmetrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	// A change under a tenth is not worth a call: the goal moves little.
	if p := floorPercent(h.floor, v[0], v[0]+v[1]+v[2]); p*10 <= h.percent*9 || p*10 >= h.percent*11 {
		h.percent = p
		debug.SetGCPercent(p)
	}
	return true
}

func (h *heapFloor) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		debug.SetGCPercent(100)
	}
}

// floorPercent is the GC percent that puts the heap goal at floor for a
// live heap of live bytes of which scan bytes (live heap, stacks and
// globals) are scanned: at least 100 (Go's default, once the live heap is
// half the floor or more), at most the percent whose minimum heap is the
// floor.
func floorPercent(floor, live, scan uint64) int {
	most := int(floor * 100 / heapMinimum)
	if live >= floor || scan == 0 {
		return 100
	}
	p := int(min((floor-live)*100/scan, uint64(most)))
	return max(100, min(p, most))
}
