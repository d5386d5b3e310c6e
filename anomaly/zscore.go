package anomaly

import (
	"math"
	"sync"
)

// ZScore judges each value by its z-score against the mean and standard
// deviation of the last Window accepted values. Updates are O(1): Welford's
// running mean and sum of squares, with the value leaving the window
// removed the same way, and an exact two-pass recomputation every Window
// updates so rounding error cannot accumulate (values around 1e9 with a
// variance of 1 stay exact).
type ZScore struct {
	cfg Config

	mu      sync.Mutex
	ring    []float64
	head    int // next slot to overwrite
	n       int
	mean    float64
	m2      float64 // sum of squared deviations from mean
	updates int     // since the last exact recomputation
	streak  streak
}

var _ Detector = (*ZScore)(nil)

// NewZScore validates cfg.
func NewZScore(cfg Config) (*ZScore, error) {
	cfg, err := cfg.withDefaults(DefaultThreshold)
	if err != nil {
		return nil, err
	}
	return &ZScore{cfg: cfg, ring: make([]float64, cfg.Window), streak: streak{make([]float64, 0, max(cfg.RebaselineAfter, 0))}}, nil
}

// Observe implements Detector. NaN and infinite values are not
// measurements: they are neither judged nor kept.
func (d *ZScore) Observe(x float64) Result { return d.observe(x, nil) }

// observe judges x; floor, if set, gives an extra floor on the standard
// deviation from the baseline mean (ErrorRate's binomial floor).
func (d *ZScore) observe(x float64, floor func(mean float64) float64) Result {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return Result{Value: x}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n < d.cfg.MinSamples {
		d.add(x)
		return Result{Value: x, WarmingUp: true, Mean: d.mean, StdDev: d.stddev()}
	}
	sd := d.stddev()
	if floor != nil {
		sd = max(sd, floor(d.mean))
	}
	r := d.cfg.judge(x, d.mean, sd)
	switch {
	case !r.Anomaly:
		d.streak.reset()
		d.add(x)
	case d.cfg.IncludeAnomalies:
		d.add(x)
	case d.streak.push(x, d.cfg.RebaselineAfter):
		d.n, d.head, d.updates = 0, 0, 0
		for _, v := range d.streak.vals {
			d.ring[d.head] = v
			d.head = (d.head + 1) % len(d.ring)
			d.n++
		}
		d.recompute()
		d.streak.reset()
		r.Rebaselined = true
	}
	return r
}

func (d *ZScore) stddev() float64 {
	if d.n < 2 {
		return 0
	}
	return math.Sqrt(max(d.m2, 0) / float64(d.n-1))
}

func (d *ZScore) add(x float64) {
	if d.n == len(d.ring) {
		old := d.ring[d.head]
		// Remove old: Welford in reverse.
		delta := old - d.mean
		d.mean -= delta / float64(d.n-1)
		d.m2 -= delta * (old - d.mean)
		d.n--
	}
	d.ring[d.head] = x
	d.head = (d.head + 1) % len(d.ring)
	d.n++
	delta := x - d.mean
	d.mean += delta / float64(d.n)
	d.m2 += delta * (x - d.mean)
	if d.updates++; d.updates >= len(d.ring) {
		d.recompute()
	}
}

// recompute derives mean and m2 exactly from the window (two passes).
func (d *ZScore) recompute() {
	d.updates = 0
	if d.n == 0 {
		d.mean, d.m2 = 0, 0
		return
	}
	var sum float64
	for i := range d.n {
		sum += d.at(i)
	}
	mean := sum / float64(d.n)
	var m2, comp float64
	for i := range d.n {
		dv := d.at(i) - mean
		m2 += dv * dv
		comp += dv
	}
	// Corrected two-pass: removes the rounding error left in mean.
	d.mean = mean + comp/float64(d.n)
	d.m2 = m2 - comp*comp/float64(d.n)
}

// at returns the i-th oldest value in the window.
func (d *ZScore) at(i int) float64 {
	start := d.head - d.n
	if start < 0 {
		start += len(d.ring)
	}
	return d.ring[(start+i)%len(d.ring)]
}
