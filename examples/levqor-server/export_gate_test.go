package main

import (
	"fmt"
	"testing"
)

// TestExportGate: a quarter of the database connections (at least one)
// serve exports, one per subject; leaving frees the slot.
func TestExportGate(t *testing.T) {
	for _, tc := range []struct{ conns, slots int }{{1, 1}, {4, 1}, {7, 1}, {8, 2}, {20, 5}} {
		t.Run(fmt.Sprint(tc.conns, " connections"), func(t *testing.T) {
			g := newExportGate(tc.conns)
			if !g.enter("s0") || g.enter("s0") {
				t.Fatal("a subject's second export at once was not refused")
			}
			for i := 1; i < tc.slots; i++ {
				if !g.enter(fmt.Sprint("s", i)) {
					t.Fatalf("export %d of %d slots refused", i+1, tc.slots)
				}
			}
			if g.enter("one too many") {
				t.Fatalf("more than %d exports at once", tc.slots)
			}
			g.leave("s0")
			if !g.enter("one too many") {
				t.Fatal("a freed slot was not reused")
			}
		})
	}
}
