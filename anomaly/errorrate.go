package anomaly

import "math"

// DefaultMinRequests is the fewest requests a window needs to be judged.
const DefaultMinRequests = 20

// ErrorRateConfig configures an ErrorRate detector.
type ErrorRateConfig struct {
	// Config configures the underlying z-score detector over window error
	// rates. Direction is ignored: only rises are anomalies.
	Config
	// MinRequests: a window with fewer requests is neither judged nor
	// added to the baseline, so one error in two requests is no anomaly.
	// Default DefaultMinRequests (20).
	MinRequests int
}

// ErrorRate judges the error rate (errors/total) of successive windows of
// requests against the rates of recent windows. Besides Config's floors,
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
	cfg.Direction = Spikes
	z, err := NewZScore(cfg.Config)
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
