package anomaly

import (
	"github.com/levqor/levqor/alert"

	"errors"
	"fmt"
	"math"
)

// Direction selects which deviations count.
type Direction int

// Directions. The zero value flags both.
const (
	Both   Direction = iota // above or below the baseline
	Spikes                  // only above (latency, error rate)
	Drops                   // only below (throughput, sign-ups)
)

// Grade is how far a value deviates, by |z|: a property of the data. It
// is not alert.Severity (how urgent a notification is); AlertSeverity maps
// one to the other where an anomaly becomes an alert.
type Grade int

// Grades. None means not an anomaly.
const (
	None Grade = iota
	Low
	Medium
	High
)

// AlertSeverity maps a grade to the severity of an alert about it: Low is
// info, Medium a warning, High critical.
func (s Grade) AlertSeverity() alert.Severity {
	switch s {
	case Medium:
		return alert.SeverityWarning
	case High:
		return alert.SeverityCritical
	}
	return alert.SeverityInfo
}

func (s Grade) String() string {
	switch s {
	case None:
		return "none"
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return fmt.Sprintf("grade(%d)", int(s))
}

// Result is the verdict on one observation.
type Result struct {
	Value   float64
	Anomaly bool
	// Z is the (modified, for Robust) z-score against the baseline before
	// this value; 0 while warming up.
	Z     float64
	Grade Grade
	// Mean and StdDev describe the baseline the value was judged against
	// (for Robust: the median and the scaled MAD). StdDev is after the floor.
	Mean, StdDev float64
	// WarmingUp is true until MinSamples values are in the baseline; no
	// value is judged before.
	WarmingUp bool
	// Rebaselined is true when this value completed RebaselineAfter
	// anomalies in a row and the baseline was reset to them: a level shift
	// is accepted rather than flagged forever.
	Rebaselined bool
}

// Detector judges a stream of values. Implementations are safe for
// concurrent use.
type Detector interface {
	Observe(x float64) Result
}

// Defaults for Config.
const (
	DefaultWindow          = 20
	DefaultThreshold       = 3.0
	DefaultRobustThreshold = 3.5
	DefaultRebaselineAfter = 5
	DefaultMinRelStdDev    = 0.01
)

// MaxWindow bounds Config.Window: each detector keeps up to three slices
// of Window values, so a window of a billion would ask for gigabytes (or
// more than a slice can hold) when the detector is built.
const MaxWindow = 1 << 20

// Config configures every detector. Zero fields take the defaults.
type Config struct {
	// Window is how many recent values form the baseline (for EWMA, the
	// smoothing is alpha = 2/(Window+1)), 2 to MaxWindow. Default
	// DefaultWindow (20).
	Window int
	// Threshold is the |z| at which a value is an anomaly. Default
	// DefaultThreshold (3) for ZScore and EWMA, DefaultRobustThreshold (3.5,
	// Iglewicz & Hoaglin) for Robust.
	Threshold float64
	// Bands are the |z| at which the grade becomes Medium and High (Low
	// starts at Threshold). Default Threshold+1 and Threshold+2.
	MediumAt, HighAt float64
	// MinSamples is the warm-up: values needed before judging. Default
	// Window/2 (at least 2).
	MinSamples int
	// MinStdDev and MinRelStdDev floor the baseline's standard deviation at
	// max(MinStdDev, MinRelStdDev×|mean|), so a flat series does not turn
	// noise into an infinite z. Defaults 0 and DefaultMinRelStdDev (1%); a
	// negative MinRelStdDev turns the relative floor off. A series whose
	// mean is 0 needs MinStdDev. Both must be finite.
	MinStdDev, MinRelStdDev float64
	// Direction selects spikes, drops or both. Default Both.
	Direction Direction
	// RebaselineAfter: after this many anomalies in a row the baseline is
	// replaced by them (a level shift); at most Window. Default
	// DefaultRebaselineAfter (5), or Window if that is smaller; negative
	// never rebaselines.
	RebaselineAfter int
	// IncludeAnomalies lets flagged values enter the baseline. Default
	// false: an anomaly does not contaminate the baseline it is judged by.
	IncludeAnomalies bool
}

// MaxValue bounds the magnitude of a value: larger ones (like NaN and
// ±Inf) are not measurements, neither judged nor kept, because their
// squares would overflow the statistics and blind the detector.
const MaxValue = 1e100

func (c Config) withDefaults(threshold float64) (Config, error) {
	for _, f := range []float64{c.Threshold, c.MediumAt, c.HighAt, c.MinStdDev, c.MinRelStdDev} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return c, fmt.Errorf("anomaly: Threshold, MediumAt, HighAt, MinStdDev and MinRelStdDev must be finite numbers")
		}
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Threshold == 0 {
		c.Threshold = threshold
	}
	if c.MediumAt == 0 {
		c.MediumAt = c.Threshold + 1
	}
	if c.HighAt == 0 {
		c.HighAt = c.Threshold + 2
	}
	if c.MinSamples == 0 {
		c.MinSamples = max(2, c.Window/2)
	}
	switch {
	case c.MinRelStdDev == 0:
		c.MinRelStdDev = DefaultMinRelStdDev
	case c.MinRelStdDev < 0:
		c.MinRelStdDev = 0 // off
	}
	if c.RebaselineAfter == 0 {
		// A window shorter than the default would refuse a field its
		// caller never set.
		c.RebaselineAfter = min(DefaultRebaselineAfter, c.Window)
	}
	switch {
	case c.Window < 2 || c.Window > MaxWindow:
		return c, fmt.Errorf("anomaly: Window %d must be between 2 and %d", c.Window, MaxWindow)
	case c.Threshold <= 0 || math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0):
		return c, fmt.Errorf("anomaly: Threshold must be a positive number")
	case !(c.Threshold <= c.MediumAt && c.MediumAt <= c.HighAt):
		return c, fmt.Errorf("anomaly: need Threshold <= MediumAt <= HighAt")
	case c.MinSamples < 2 || c.MinSamples > c.Window:
		return c, fmt.Errorf("anomaly: MinSamples must be between 2 and Window")
	case c.MinStdDev < 0:
		return c, fmt.Errorf("anomaly: negative MinStdDev")
	case c.Direction < Both || c.Direction > Drops:
		return c, fmt.Errorf("anomaly: unknown Direction %d", c.Direction)
	case c.RebaselineAfter > c.Window:
		return c, fmt.Errorf("anomaly: RebaselineAfter %d exceeds Window %d", c.RebaselineAfter, c.Window)
	}
	return c, nil
}

// judge fills r (which the caller returns: no copies on the hot path)
// with x's verdict against mean and sd.
func (c *Config) judge(r *Result, x, mean, sd float64) {
	sd = max(sd, c.MinStdDev, c.MinRelStdDev*math.Abs(mean))
	*r = Result{Value: x, Mean: mean, StdDev: sd}
	if sd == 0 {
		// Flat series with a zero mean and no MinStdDev: only an exact
		// repeat is normal.
		switch {
		case x == mean:
			return
		case x > mean:
			r.Z = math.Inf(1)
		default:
			r.Z = math.Inf(-1)
		}
	} else {
		r.Z = (x - mean) / sd
	}
	c.grade(r)
}

func (c *Config) grade(r *Result) {
	z := r.Z
	switch c.Direction {
	case Spikes:
		if z < 0 {
			return
		}
	case Drops:
		if z > 0 {
			return
		}
	}
	a := math.Abs(z)
	switch {
	case a >= c.HighAt:
		r.Grade = High
	case a >= c.MediumAt:
		r.Grade = Medium
	case a >= c.Threshold:
		r.Grade = Low
	default:
		return
	}
	r.Anomaly = true
}

// streak tracks consecutive anomalies for re-baselining.
type streak struct {
	vals []float64 // the last anomalies, oldest first
}

// push records an anomaly and reports whether the streak is complete.
func (s *streak) push(x float64, k int) bool {
	if k <= 0 {
		return false
	}
	s.vals = append(s.vals, x)
	return len(s.vals) >= k
}

func (s *streak) reset() { s.vals = s.vals[:0] }

func errorf(msg string) error { return errors.New("anomaly: " + msg) }
