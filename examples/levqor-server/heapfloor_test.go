package main

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name              string
		floor, live, scan uint64
		want              int
	}{
		{"small live heap: the percent whose minimum heap is the floor", 16 * mib, 1 * mib, 1.5 * mib, 400},
		{"live heap a fifth of the floor: goal at the floor", 16 * mib, 3 * mib, 3.5 * mib, 371},
		{"live heap half the floor: Go's default", 16 * mib, 8 * mib, 8.5 * mib, 100},
		{"live heap over the floor", 16 * mib, 40 * mib, 41 * mib, 100},
		{"floor under Go's minimum heap", 1 * mib, 100 << 10, 200 << 10, 100},
		{"nothing scanned yet", 16 * mib, 0, 0, 100},
		{"larger floor", 64 * mib, 1 * mib, 2 * mib, 1600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := floorPercent(tc.floor, tc.live, tc.scan); got != tc.want {
				t.Errorf("floorPercent(%d, %d, %d) = %d, want %d", tc.floor, tc.live, tc.scan, got, tc.want)
			}
		})
	}
}

// TestHeapFloorFollowsLiveHeap runs the floor in this process: the GC
// percent rises while the live heap is small, returns to 100 once it
// passes the floor, rises again when it shrinks, and stays at 100 after
// stop.
func TestHeapFloorFollowsLiveHeap(t *testing.T) {
	t.Cleanup(func() { debug.SetGCPercent(100) })
	gogc := func() uint64 {
		s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
		rtmetrics.Read(s)
		return s[0].Value.Uint64()
	}
	// The floor adjusts after a cycle, on the cleanup goroutine: collect
	// until it has (or give up).
	await := func(what string, ok func(uint64) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(gogc()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: GC percent %d", what, gogc())
			}
			runtime.GC()
			runtime.Gosched()
		}
	}
	const floor = 64 << 20
	stop := startHeapFloor(floor)
	await("small live heap", func(p uint64) bool { return p > 100 })

	live := make([]byte, floor+(16<<20))
	for i := range live {
		live[i] = byte(i)
	}
	await("live heap over the floor", func(p uint64) bool { return p == 100 })
	runtime.KeepAlive(live)
	live = nil

	await("live heap small again", func(p uint64) bool { return p > 100 })
	stop()
	if p := gogc(); p != 100 {
		t.Fatalf("after stop: GC percent %d, want 100", p)
	}
	for range 5 {
		runtime.GC()
		runtime.Gosched()
	}
	if p := gogc(); p != 100 {
		t.Fatalf("cycles after stop: GC percent %d, want 100", p)
	}
	stop = startHeapFloor(0)
	defer stop()
	if p := gogc(); p != 100 {
		t.Fatalf("a zero floor set the GC percent to %d", p)
	}
}

func TestHeapFloorYieldsToGOGC(t *testing.T) {
	for _, tc := range []struct {
		gogc string
		want uint64
	}{{"", DefaultHeapFloor}, {"100", 0}, {"off", 0}} {
		c, err := loadConfig(func(k string) string {
			if k == "GOGC" {
				return tc.gogc
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.HeapFloor != tc.want {
			t.Errorf("GOGC=%q: HeapFloor %d, want %d", tc.gogc, c.HeapFloor, tc.want)
		}
	}
}
