package main

import (
	"context"
	"testing"
	"time"
)

// TestForgeryGuard: an IP is blocked once it passes forgeryRate's burst,
// until the rate allows it again; other IPs are not; ended blocks are
// dropped, so the hot path's check turns off again; the blocked set is
// bounded.
func TestForgeryGuard(t *testing.T) {
	g, err := newForgeryGuard(2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	now := time.Now()
	g.now = func() time.Time { return now }
	ctx := context.Background()
	for i := range forgeryRate.Burst {
		if g.forged(ctx, "198.51.100.1") {
			t.Fatalf("blocked after %d forged tokens; the burst is %d", i+1, forgeryRate.Burst)
		}
	}
	if g.active() || g.blocked("198.51.100.1") {
		t.Fatal("blocked within the burst")
	}
	if !g.forged(ctx, "198.51.100.1") || !g.active() || !g.blocked("198.51.100.1") || g.blocked("198.51.100.2") {
		t.Fatal("the forged token past the burst did not block its address, or blocked another")
	}
	now = now.Add(forgeryRate.Period / time.Duration(forgeryRate.Limit)) // one token back
	// Another address asking drops the ended block: nothing is left to
	// check, though the blocked address never came back.
	if g.blocked("198.51.100.2") || g.active() {
		t.Fatal("still active once the only block ended")
	}
	if g.blocked("198.51.100.1") {
		t.Fatal("still blocked once the rate allows the address again")
	}

	// Bounded: with two addresses blocked, a third is not recorded.
	for _, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		for range forgeryRate.Burst + 1 {
			g.forged(ctx, ip)
		}
	}
	if len(g.until) != 2 || g.blocked("203.0.113.3") {
		t.Fatalf("%d addresses blocked with room for 2", len(g.until))
	}
}
