package anomaly_test

import (
	"fmt"

	"github.com/levqor/levqor/anomaly"
)

// Example replays a latency series: a rolling
// window of 20, three sigma, and one spike among 23 samples.
func Example() {
	d, _ := anomaly.NewZScore(anomaly.Config{Window: 20, Threshold: 3, Direction: anomaly.Spikes})
	latencies := []float64{
		102, 98, 101, 99, 103, 97, 100, 104, 96, 101,
		99, 102, 98, 100, 103, 97, 101, 99, 100, 102,
		98, 131, 101,
	}
	flagged := 0
	for i, ms := range latencies {
		if r := d.Observe(ms); r.Anomaly {
			flagged++
			fmt.Printf("sample %d: %.0fms z=%.2f grade=%s (baseline %.1f±%.2f)\n", i, ms, r.Z, r.Grade, r.Mean, r.StdDev)
		}
	}
	fmt.Printf("flagged %d of %d\n", flagged, len(latencies))
	// Output:
	// sample 21: 131ms z=14.00 grade=high (baseline 99.9±2.22)
	// flagged 1 of 23
}
