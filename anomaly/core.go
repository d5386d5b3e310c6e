package anomaly

import (
	"math"
	"sync"
)

// baseline is what each detector keeps: the statistics a value is judged
// against. core holds the lock and the logic they share.
type baseline interface {
	count() int
	stats() (center, spread float64)
	add(x float64)
	reset()
}

// core implements Observe for every detector: warm-up, judging, the
// contamination guard and re-baselining.
type core struct {
	cfg    Config
	mu     sync.Mutex
	streak streak
	b      baseline
}

func newCore(cfg Config, b baseline) core {
	return core{cfg: cfg, b: b, streak: streak{make([]float64, 0, max(cfg.RebaselineAfter, 0))}}
}

// observe judges x; floor, if set, adds a floor on the spread computed
// from the baseline's center (ErrorRate's binomial floor).
func (c *core) observe(x float64, floor func(center float64) float64) Result {
	if !(math.Abs(x) <= MaxValue) { // NaN, ±Inf, or an overflow risk
		return Result{Value: x} // not a measurement: neither judged nor kept
	}
	c.mu.Lock()
	r := c.observeLocked(x, floor)
	c.mu.Unlock() // not deferred: this is the hot path, and nothing in it panics
	return r
}

func (c *core) observeLocked(x float64, floor func(center float64) float64) Result {
	if c.b.count() < c.cfg.MinSamples {
		c.b.add(x)
		center, spread := c.b.stats()
		return Result{Value: x, WarmingUp: true, Mean: center, StdDev: spread}
	}
	center, spread := c.b.stats()
	if floor != nil {
		spread = max(spread, floor(center))
	}
	var r Result
	c.cfg.judge(&r, x, center, spread)
	switch {
	case !r.Anomaly:
		c.streak.reset()
		c.b.add(x)
	case c.cfg.IncludeAnomalies:
		c.b.add(x)
	case c.streak.push(x, c.cfg.RebaselineAfter):
		c.b.reset()
		for _, v := range c.streak.vals {
			c.b.add(v)
		}
		c.streak.reset()
		r.Rebaselined = true
	}
	return r
}
