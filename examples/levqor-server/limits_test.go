package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
)

// TestLoginGuards: each guard counts an attempt before its password is
// checked, refuses the one after loginFailures with the rest of the
// window, gives back released attempts and resets on success.
func TestLoginGuards(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, tc := range []struct {
		name  string
		guard loginGuard
	}{
		{"memory", newMemoryGuard(100)},
		{"redis", redisGuard{rdb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ctx := tc.guard, t.Context()
			attempt := func(key string) time.Duration {
				t.Helper()
				d, err := g.Attempt(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			k := accountKey(tc.name + "-victim@example.com")
			for i := range loginFailures {
				if d := attempt(k); d != 0 {
					t.Fatalf("attempt %d refused (%v)", i+1, d)
				}
			}
			d := attempt(k)
			if d <= loginWindow-time.Minute || d > loginWindow {
				t.Fatalf("attempt %d: locked for %v, want about %v", loginFailures+1, d, loginWindow)
			}
			// Refused attempts are not counted: one release frees one.
			if err := g.Release(ctx, k); err != nil {
				t.Fatal(err)
			}
			if d := attempt(k); d != 0 {
				t.Fatalf("attempt after a release refused (%v)", d)
			}
			if d := attempt(k); d == 0 {
				t.Fatal("second attempt after one release allowed")
			}
			if err := g.Succeeded(ctx, k); err != nil {
				t.Fatal(err)
			}
			if d := attempt(k); d != 0 {
				t.Fatalf("attempt after a success refused (%v)", d)
			}
			// Releasing more than was counted never banks attempts.
			other := accountKey(tc.name + "-other@example.com")
			for range 3 {
				if err := g.Release(ctx, other); err != nil {
					t.Fatal(err)
				}
			}
			for i := range loginFailures {
				if d := attempt(other); d != 0 {
					t.Fatalf("attempt %d refused (%v)", i+1, d)
				}
			}
			if d := attempt(other); d == 0 {
				t.Fatalf("attempt %d allowed after releases made in advance", loginFailures+1)
			}
		})
	}
}

func TestMemoryGuardBounded(t *testing.T) {
	g := newMemoryGuard(100)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	ctx := t.Context()
	for i := range 10_000 {
		_, _ = g.Attempt(ctx, accountKey(strconv.Itoa(i)))
	}
	if len(g.keys) > 100 {
		t.Fatalf("%d keys held, cap 100", len(g.keys))
	}
	k := accountKey("victim")
	for range loginFailures {
		if d, _ := g.Attempt(ctx, k); d != 0 {
			t.Fatal("locked too early")
		}
	}
	if d, _ := g.Attempt(ctx, k); d != loginWindow {
		t.Fatalf("locked for %v", d)
	}
	now = now.Add(loginWindow)
	if d, _ := g.Attempt(ctx, k); d != 0 {
		t.Fatalf("still locked after the window: %v", d)
	}
}
