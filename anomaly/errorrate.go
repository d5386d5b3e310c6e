package anomaly

import "math"

// DefaultMinRequests is the fewest requests a window needs to be judged.
const DefaultMinRequests = 20

// ErrorRateConfig configures an ErrorRate detector. The fields mean what
// they mean in Config; there is no Direction: an error rate is judged for
// rises only.
type ErrorRateConfig struct {
	// Window is how many recent windows' rates form the baseline. Default
	// DefaultWindow (20).
	Window int
	// Threshold, MediumAt and HighAt grade the z-score. Defaults
	// DefaultThreshold (3), Threshold+1, Threshold+2.
	Threshold, MediumAt, HighAt float64
	// MinSamples is the warm-up in windows. Default Window/2 (at least 2).
	MinSamples int
	// RebaselineAfter: after this many anomalous windows in a row the
	// baseline is replaced by them. Default DefaultRebaselineAfter (5);
	// negative never rebaselines.
	RebaselineAfter int
	// MinRequests: a window with fewer requests is neither judged nor
	// added to the baseline, so one error in two requests is no anomaly.
	// Default DefaultMinRequests (20).
	MinRequests int
}

// ErrorRate judges the error rate (errors/total) of successive windows of
// requests against the rates of recent windows. It is not a Detector: it
// observes counts (errors, total), not values, and flags only rises. Besides Config's floors,
// the standard deviation is floored by the binomial sampling error
// sqrt(p(1-p)/n) of a window of n requests at the baseline rate p (at
// least 1/(2n)), so a few errors over a zero-error baseline are judged by
// what chance alone would produce.
type ErrorRate struct {
	z           *ZScore
	minRequests int
}

// NewErrorRate validates cfg.
func NewErrorRate(cfg ErrorRateConfig) (*ErrorRate, error) {
	if cfg.MinRequests < 0 {
		return nil, errorf("MinRequests must not be negative")
	}
	if cfg.MinRequests == 0 {
		cfg.MinRequests = DefaultMinRequests
	}
	z, err := NewZScore(Config{
		Window: cfg.Window, Threshold: cfg.Threshold, MediumAt: cfg.MediumAt, HighAt: cfg.HighAt,
		MinSamples: cfg.MinSamples, RebaselineAfter: cfg.RebaselineAfter, Direction: Spikes,
	})
	if err != nil {
		return nil, err
	}
	return &ErrorRate{z: z, minRequests: cfg.MinRequests}, nil
}

// Observe judges one window with errors failed requests out of total.
func (e *ErrorRate) Observe(errors, total int) Result {
	if total <= 0 || errors < 0 || errors > total {
		return Result{Value: math.NaN()}
	}
	rate := float64(errors) / float64(total)
	if total < e.minRequests {
		return Result{Value: rate}
	}
	n := float64(total)
	return e.z.observe(rate, func(mean float64) float64 {
		p := min(max(mean, 0.5/n), 1)
		return math.Sqrt(p * (1 - p) / n)
	})
}
