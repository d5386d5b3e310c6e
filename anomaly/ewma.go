package anomaly

import (
	"math"
	"sync"
)

// EWMA judges each value against an exponentially weighted moving mean and
// variance (alpha = 2/(Window+1)): recent values weigh more, and it needs
// O(1) memory whatever the window.
type EWMA struct {
	cfg   Config
	alpha float64

	mu       sync.Mutex
	n        int
	mean     float64
	m2       float64 // warm-up only: Welford's sum of squares
	variance float64
	streak   streak
}

var _ Detector = (*EWMA)(nil)

// NewEWMA validates cfg.
func NewEWMA(cfg Config) (*EWMA, error) {
	cfg, err := cfg.withDefaults(DefaultThreshold)
	if err != nil {
		return nil, err
	}
	return &EWMA{cfg: cfg, alpha: 2 / float64(cfg.Window+1), streak: streak{make([]float64, 0, max(cfg.RebaselineAfter, 0))}}, nil
}

// Observe implements Detector.
func (d *EWMA) Observe(x float64) Result {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return Result{Value: x}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n < d.cfg.MinSamples {
		d.add(x)
		return Result{Value: x, WarmingUp: true, Mean: d.mean, StdDev: math.Sqrt(d.variance)}
	}
	r := d.cfg.judge(x, d.mean, math.Sqrt(d.variance))
	switch {
	case !r.Anomaly:
		d.streak.reset()
		d.add(x)
	case d.cfg.IncludeAnomalies:
		d.add(x)
	case d.streak.push(x, d.cfg.RebaselineAfter):
		d.n, d.mean, d.m2, d.variance = 0, 0, 0, 0
		for _, v := range d.streak.vals {
			d.add(v)
		}
		d.streak.reset()
		r.Rebaselined = true
	}
	return r
}

// add folds x in. The first value sets the mean; until the warm-up is
// over, plain running statistics (Welford) seed the weighted ones.
func (d *EWMA) add(x float64) {
	d.n++
	if d.n <= d.cfg.MinSamples {
		delta := x - d.mean
		d.mean += delta / float64(d.n)
		d.m2 += delta * (x - d.mean)
		if d.n > 1 {
			d.variance = d.m2 / float64(d.n-1)
		}
		return
	}
	diff := x - d.mean
	incr := d.alpha * diff
	d.mean += incr
	d.variance = (1 - d.alpha) * (d.variance + diff*incr)
}
