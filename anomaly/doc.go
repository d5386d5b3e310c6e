// Package anomaly flags unusual values in a stream of measurements
// (latencies, error rates, sign-ups).
//
// # Quick start
//
//	d, _ := anomaly.NewZScore(anomaly.Config{Direction: anomaly.Spikes})
//	if r := d.Observe(latencyMs); r.Anomaly {
//		log.Printf("latency %.0fms is %s (z=%.1f)", latencyMs, r.Grade, r.Z)
//	}
//
// # Detectors
//
//   - ZScore: rolling window (default 20), z-score against the window's
//     mean and standard deviation, O(1) per value and numerically stable
//     (Welford updates plus an exact recomputation every Window values).
//   - EWMA: exponentially weighted mean and variance, O(1) memory.
//   - Robust: median and MAD (modified z-score, threshold 3.5), unmoved by
//     a few outliers, with the mean-absolute-deviation fallback when MAD = 0.
//
// All share one Config: window, threshold, grade bands (Low from the
// threshold, Medium at +1, High at +2 by default), warm-up, a floor on the
// standard deviation (1% of |mean| by default) so a flat series does not
// turn noise into an infinite z, and the direction that counts.
//
// Baseline contamination: a flagged value does not enter the baseline, so a
// spike cannot hide the next one. After RebaselineAfter (default 5)
// anomalies in a row the baseline is replaced by them and warm-up resumes:
// a real level shift is accepted instead of being flagged forever.
//
// ErrorRate judges errors/total over windows of requests, ignoring windows
// with fewer than MinRequests and flooring the deviation by binomial
// sampling error. Every detector is safe for concurrent use and allocates
// nothing per observation.
package anomaly
