package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/tokens"
)

// redisCheckTimeout bounds one data-loss check.
const redisCheckTimeout = 2 * time.Second

// dataLostClaim is the Redis key a replica sets, only if absent, before
// it alerts that Redis lost its data: every replica notices the loss, one
// of them says so. The claim lasts three check intervals (at least a
// minute), long enough for every replica to have noticed; a loss within
// that time is the same incident.
const dataLostClaim = "levqor:alert:redis-data-lost"

// redisWatch raises an alert when Redis lost the token store's data. The
// tokens it held are refused already (a missing family counts as
// revoked); the alert tells the operator why every user was logged out.
type redisWatch struct {
	rdb      redis.UniversalClient // for the claim on the alert
	interval time.Duration         // between checks
	store    *tokens.RedisStore
	cache    *tokens.Cache // flushed on a loss: what it remembers is gone
	alerts   *alert.Alerter
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
		// The first replica to claim the loss alerts; a claim that fails
		// (Redis unreachable again) alerts too: a repeated alert beats a
		// missed one.
		if first, cerr := w.rdb.SetNX(ctx, dataLostClaim, "1", max(time.Minute, 3*w.interval)).Result(); cerr == nil && !first {
			w.log.Info("redis lost its data: another replica alerted")
			break
		}
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
