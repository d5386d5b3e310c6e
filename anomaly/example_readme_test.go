package anomaly_test

import "github.com/levqor/levqor/anomaly"

// Example_readme is the anomaly section of the README, compiled.
func Example_readme() {
	latencyMs, errs, requests := 120.0, 3, 400
	// README:begin
	d, _ := anomaly.NewZScore(anomaly.Config{Direction: anomaly.Spikes}) // or NewEWMA, NewRobust
	r := d.Observe(latencyMs)                                            // r.Anomaly, r.Z, r.Grade, r.Mean, r.StdDev, r.WarmingUp
	er, _ := anomaly.NewErrorRate(anomaly.ErrorRateConfig{})
	r = er.Observe(errs, requests) // windows of requests; rises only
	// README:end
	_ = r
}
