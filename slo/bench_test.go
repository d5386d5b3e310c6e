package slo_test

import (
	"testing"
	"time"

	"github.com/levqor/levqor/slo"
)

func BenchmarkTracker(b *testing.B) {
	tr, _ := slo.NewTracker(slo.TrackerConfig{EvalInterval: -1})
	defer tr.Close()
	b.Run("Record", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tr.Record(i%100 != 0)
			i++
		}
	})
	b.Run("Record/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				tr.Record(i%100 != 0)
				i++
			}
		})
	})
	b.Run("Observe", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tr.Observe(time.Duration(i%500)*time.Millisecond, true)
			i++
		}
	})
	b.Run("Evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tr.Status()
		}
	})
}
