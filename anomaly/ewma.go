package anomaly

import (
	"math"
)

// EWMA judges each value against an exponentially weighted moving mean and
// variance (alpha = 2/(Window+1)): recent values weigh more, and it needs
// O(1) memory whatever the window.
type EWMA struct {
	core
	alpha    float64
	n        int
	mean     float64
	m2       float64 // warm-up only: Welford's sum of squares
	variance float64
}

var _ Detector = (*EWMA)(nil)

// NewEWMA validates cfg.
func NewEWMA(cfg Config) (*EWMA, error) {
	cfg, err := cfg.withDefaults(DefaultThreshold)
	if err != nil {
		return nil, err
	}
	d := &EWMA{alpha: 2 / float64(cfg.Window+1)}
	d.core = newCore(cfg, d)
	return d, nil
}

// Observe implements Detector.
func (d *EWMA) Observe(x float64) (r Result) {
	if !(math.Abs(x) <= MaxValue) {
		return Result{Value: x}
	}
	d.mu.Lock()
	// The common case inline: a judged, normal value is folded in.
	if d.n >= d.cfg.MinSamples {
		if d.cfg.judge(&r, x, d.mean, math.Sqrt(d.variance)); !r.Anomaly {
			d.streak.reset()
			d.add(x)
			d.mu.Unlock()
			return r
		}
	}
	r = d.observeLocked(x, nil)
	d.mu.Unlock()
	return r
}

func (d *EWMA) count() int                { return d.n }
func (d *EWMA) stats() (float64, float64) { return d.mean, math.Sqrt(d.variance) }
func (d *EWMA) reset()                    { d.n, d.mean, d.m2, d.variance = 0, 0, 0, 0 }

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
