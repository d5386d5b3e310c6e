package anomaly_test

import (
	"testing"

	"github.com/levqor/levqor/anomaly"
)

func BenchmarkObserve(b *testing.B) {
	z, _ := anomaly.NewZScore(anomaly.Config{})
	e, _ := anomaly.NewEWMA(anomaly.Config{})
	r, _ := anomaly.NewRobust(anomaly.Config{})
	er, _ := anomaly.NewErrorRate(anomaly.ErrorRateConfig{})
	for name, d := range map[string]anomaly.Detector{"zscore": z, "ewma": e, "robust": r} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.Observe(100 + float64(i%13))
				i++
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					d.Observe(100 + float64(i%13))
					i++
				}
			})
		})
	}
	b.Run("errorrate", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			er.Observe(i%3, 100)
			i++
		}
	})
}
