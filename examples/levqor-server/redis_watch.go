package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/tokens"
)

// redisCheckTimeout bounds one data-loss check.
const redisCheckTimeout = 2 * time.Second

// redisWatch raises an alert when Redis lost the token store's data. The
// tokens it held are refused already (a missing family counts as
// revoked); the alert tells the operator why every user was logged out.
type redisWatch struct {
	interval time.Duration // between checks
	store    *tokens.RedisStore
	cache    *tokens.Cache // flushed on a loss: what it remembers is gone
	alerts   alert.Notifier
	log      *slog.Logger
	lost     *atomic.Int64 // losses seen, for /metrics
	failing  bool          // the previous check could not reach Redis
}

func (w *redisWatch) check(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, redisCheckTimeout)
	defer cancel()
	err := w.store.CheckData(ctx)
	if parent.Err() != nil {
		return // shutting down
	}
	switch {
	case errors.Is(err, tokens.ErrDataLost):
		if w.cache != nil {
			w.cache.Flush()
		}
		w.lost.Add(1)
		w.log.Error("redis lost its data", "err", err)
		// Every replica notices the loss; the alerts' shared claims
		// (alert_claims.go) deliver one alert between them.
		_ = w.alerts.Notify(ctx, alert.Alert{
			Severity: alert.SeverityCritical, Title: "Redis lost its data", Key: "redis-data-lost",
			Message: err.Error() + ". Rate limits restarted from zero. Check Redis persistence (README \"Running several replicas\").",
		})
	case err != nil:
		if !w.failing { // once per outage, not every interval
			w.log.Warn("redis data check failed", "err", err)
		}
		w.failing = true
		return
	}
	if err == nil && w.failing {
		w.log.Info("redis data check succeeds again")
	}
	w.failing = err != nil
}
