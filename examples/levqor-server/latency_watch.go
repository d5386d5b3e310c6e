package main

import (
	"sync"
	"time"

	"github.com/levqor/levqor/anomaly"
)

// latencyFloorShare sets the least spread a route's baseline is judged
// with: this share of the SLO latency threshold (10 ms of the default
// 200 ms). A High spike (z ≥ 6) is then at least 0.3 × the SLO threshold
// above the route's mean: a request of a route answering in 0.05 ms that
// takes 0.3 ms is not news, though its z against that route's own spread
// is in the hundreds.
const latencyFloorShare = 0.05

// latencyWatch judges each API route's request latencies against that
// route's own recent baseline: a login that hashes a password (tens of
// milliseconds) is not a spike of GET /api/me (tenths of one). Routes
// are mux patterns, a closed set, so the detectors are bounded.
type latencyWatch struct {
	cfg    anomaly.Config
	routes sync.Map // route → *anomaly.ZScore
}

func newLatencyWatch(sloLatency time.Duration) (*latencyWatch, error) {
	cfg := anomaly.Config{Window: 200, MinSamples: 50, Direction: anomaly.Spikes, Threshold: 4,
		MinStdDev: max(0.001, latencyFloorShare*float64(sloLatency)/float64(time.Millisecond))}
	// Built once here, so a mistake fails at start, not per request.
	if _, err := anomaly.NewZScore(cfg); err != nil {
		return nil, err
	}
	return &latencyWatch{cfg: cfg}, nil
}

// observe judges one request of route that took d (judged in milliseconds).
func (w *latencyWatch) observe(route string, d time.Duration) anomaly.Result {
	z, ok := w.routes.Load(route)
	if !ok {
		fresh, _ := anomaly.NewZScore(w.cfg) // cfg was checked by newLatencyWatch
		z, _ = w.routes.LoadOrStore(route, fresh)
	}
	return z.(*anomaly.ZScore).Observe(float64(d) / float64(time.Millisecond))
}
