package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// clientLogInterval is how often the server logs an event that any client
// can cause at will (a forged Stripe webhook, a readiness probe while a
// dependency is down): the log must not grow with a client's request rate.
const clientLogInterval = time.Minute

// throttledLog logs one kind of event at most once per interval: the
// first at once, then the first after each interval, carrying how many
// went unlogged since the line before (unlogged=N). The metrics count
// every event; those unlogged after the last line are only counted there.
type throttledLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu       sync.Mutex
	last     time.Time // when the last line was logged
	logged   bool
	unlogged int
}

func newThrottledLog(log *slog.Logger, interval time.Duration, now func() time.Time) *throttledLog {
	return &throttledLog{log: log, interval: interval, now: now}
}

// Log logs msg with args at level unless a line was logged less than an
// interval ago (a clock stepped back counts as an interval passed).
func (t *throttledLog) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	t.mu.Lock()
	now := t.now()
	if t.logged && now.Sub(t.last) < t.interval && !now.Before(t.last) {
		t.unlogged++
		t.mu.Unlock()
		return
	}
	n := t.unlogged
	t.last, t.logged, t.unlogged = now, true, 0
	t.mu.Unlock()
	if n > 0 {
		args = append(args, "unlogged", n)
	}
	t.log.Log(ctx, level, msg, args...)
}
