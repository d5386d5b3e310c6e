package anomaly

import (
	"math"
	"slices"
)

// madScale makes the MAD a consistent estimator of the standard deviation
// for normal data (1/0.6745); meanADScale does the same for the mean
// absolute deviation (sqrt(pi/2)), the fallback when MAD is 0.
const (
	madScale    = 1.482602218505602
	meanADScale = 1.2533141373155001
)

// Robust judges each value by the modified z-score of Iglewicz and Hoaglin:
// (x - median) / (1.4826 × MAD) over the last Window accepted values. A few
// outliers in the window move neither the median nor the MAD, where they
// would inflate a mean and standard deviation. When more than half the
// window is one value (MAD = 0) it falls back to the mean absolute
// deviation, then to the floors in Config. Each observation costs
// O(Window) (an insertion into a sorted copy and a selection), without
// allocating.
type Robust struct {
	core
	ring   []float64
	head   int
	n      int
	sorted []float64 // the window's values, sorted
	dev    []float64 // scratch for absolute deviations
}

var _ Detector = (*Robust)(nil)

// NewRobust validates cfg (default Threshold 3.5).
func NewRobust(cfg Config) (*Robust, error) {
	cfg, err := cfg.withDefaults(DefaultRobustThreshold)
	if err != nil {
		return nil, err
	}
	d := &Robust{
		ring:   make([]float64, cfg.Window),
		sorted: make([]float64, 0, cfg.Window),
		dev:    make([]float64, cfg.Window),
	}
	d.core = newCore(cfg, d)
	return d, nil
}

// Observe implements Detector.
func (d *Robust) Observe(x float64) Result { return d.observe(x, nil) }

func (d *Robust) count() int                { return d.n }
func (d *Robust) stats() (float64, float64) { return d.baseline() }
func (d *Robust) reset()                    { d.n, d.head, d.sorted = 0, 0, d.sorted[:0] }

func (d *Robust) add(x float64) {
	if d.n == len(d.ring) {
		old := d.ring[d.head]
		i, _ := slices.BinarySearch(d.sorted, old)
		d.sorted = slices.Delete(d.sorted, i, i+1)
		d.n--
	}
	d.ring[d.head] = x
	if d.head++; d.head == len(d.ring) {
		d.head = 0
	}
	d.n++
	i, _ := slices.BinarySearch(d.sorted, x)
	d.sorted = slices.Insert(d.sorted, i, x)
}

// baseline returns the median and a robust standard deviation estimate.
func (d *Robust) baseline() (median, spread float64) {
	n := len(d.sorted)
	if n == 0 {
		return 0, 0
	}
	median = middle(d.sorted)
	dev := d.dev[:n]
	var sumAbs float64
	for i, v := range d.sorted {
		dev[i] = math.Abs(v - median)
		sumAbs += dev[i]
	}
	slices.Sort(dev)
	if mad := middle(dev); mad > 0 {
		return median, madScale * mad
	}
	return median, meanADScale * sumAbs / float64(n)
}

func middle(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
