package anomaly

import (
	"math"
)

// ZScore judges each value by its z-score against the mean and standard
// deviation of the last Window accepted values. Updates are O(1): Welford's
// running mean and sum of squares, with the value leaving the window
// removed the same way, and an exact two-pass recomputation every Window
// updates so rounding error cannot accumulate. The statistics are kept
// relative to a shift (the window's mean at the last recomputation), so
// a large offset costs no precision: for values around 1e12 with unit
// variance the standard deviation stays within 1e-9 of exact (tested).
type ZScore struct {
	core
	ring    []float64
	head    int // next slot to overwrite
	n       int
	shift   float64 // statistics are of x - shift
	mean    float64 // of x - shift
	m2      float64 // sum of squared deviations from mean
	updates int     // since the last exact recomputation
	// 1/Window and 1/(Window-1): a full window's updates multiply
	// instead of divide.
	invN, invNm1 float64
}

var _ Detector = (*ZScore)(nil)

// NewZScore validates cfg.
func NewZScore(cfg Config) (*ZScore, error) {
	cfg, err := cfg.withDefaults(DefaultThreshold)
	if err != nil {
		return nil, err
	}
	d := &ZScore{ring: make([]float64, cfg.Window), invN: 1 / float64(cfg.Window), invNm1: 1 / float64(max(cfg.Window-1, 1))}
	d.core = newCore(cfg, d)
	return d, nil
}

// Observe implements Detector. NaN and infinite values are not
// measurements: they are neither judged nor kept.
func (d *ZScore) Observe(x float64) (r Result) {
	if !(math.Abs(x) <= MaxValue) {
		return Result{Value: x}
	}
	d.mu.Lock()
	// The common case inline: a judged, normal value joins the window.
	if d.n >= d.cfg.MinSamples {
		if d.cfg.judge(&r, x, d.shift+d.mean, d.stddev()); !r.Anomaly {
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

func (d *ZScore) count() int                { return d.n }
func (d *ZScore) stats() (float64, float64) { return d.shift + d.mean, d.stddev() }
func (d *ZScore) reset()                    { d.n, d.head, d.updates, d.shift, d.mean, d.m2 = 0, 0, 0, 0, 0, 0 }

func (d *ZScore) stddev() float64 {
	if d.n < 2 {
		return 0
	}
	if d.n == len(d.ring) {
		return math.Sqrt(max(d.m2, 0) * d.invNm1)
	}
	return math.Sqrt(max(d.m2, 0) / float64(d.n-1))
}

func (d *ZScore) add(x float64) {
	if d.n == len(d.ring) && d.n > 1 {
		// A full window: x replaces the oldest value in one step
		// (mean' = mean + (y-old)/n, m2' = m2 + (y-old)(y-mean'+old-mean)).
		old, y := d.ring[d.head]-d.shift, x-d.shift
		dy := y - old
		mean := d.mean + dy*d.invN
		d.m2 += dy * (y - mean + old - d.mean)
		d.mean = mean
		d.ring[d.head] = x
		if d.head++; d.head == len(d.ring) {
			d.head = 0
		}
		if d.updates++; d.updates >= len(d.ring) {
			d.recompute()
		}
		return
	}
	if d.n == 0 {
		d.shift = x
	}
	if d.n == len(d.ring) {
		old := d.ring[d.head] - d.shift
		// Remove old: Welford in reverse.
		delta := old - d.mean
		d.mean -= delta / float64(d.n-1)
		d.m2 -= delta * (old - d.mean)
		d.n--
	}
	d.ring[d.head] = x
	if d.head++; d.head == len(d.ring) {
		d.head = 0
	}
	d.n++
	y := x - d.shift
	delta := y - d.mean
	d.mean += delta / float64(d.n)
	d.m2 += delta * (y - d.mean)
	if d.updates++; d.updates >= len(d.ring) {
		d.recompute()
	}
}

// recompute derives mean and m2 exactly from the window (two passes),
// re-centring the shift on the window's mean.
func (d *ZScore) recompute() {
	d.updates = 0
	if d.n == 0 {
		d.shift, d.mean, d.m2 = 0, 0, 0
		return
	}
	// The window is ring[:n]: all of it once full, and before that the
	// slots filled since the last reset (which set head to 0).
	vals := d.ring[:d.n]
	var sum float64
	for _, v := range vals {
		sum += v - d.shift
	}
	d.shift += sum / float64(d.n)
	var m2, comp float64
	for _, v := range vals {
		dv := v - d.shift
		m2 += dv * dv
		comp += dv
	}
	// Corrected two-pass: removes the rounding error left in the shift.
	d.mean = comp / float64(d.n)
	d.m2 = m2 - comp*comp/float64(d.n)
}
