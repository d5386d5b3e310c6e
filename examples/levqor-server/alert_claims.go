package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/alert"
)

// Replicas raise many alerts alike: each sees an outage burn its SLO,
// each finds housekeeping failing against the shared database. Their
// alerts' de-duplication is shared through claims (alert.Claimer) where
// replicas share state: in Redis when configured, else in PostgreSQL. The
// embedded SQLite has one server (serveLock), so it needs none.
func (a *app) alertClaimer() alert.Claimer {
	switch {
	case a.rdb != nil:
		return &redisClaims{rdb: a.rdb, holder: a.replica, now: time.Now}
	case a.cfg.DatabaseURL != "":
		return &sqlClaims{db: a.db, holder: a.replica, now: time.Now}
	}
	return nil
}

// replicaName names this process in alerts and claims: its machine and pid.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	return fmt.Sprintf("%s (pid %d)", host, os.Getpid())
}

// alertClaimPrefix prefixes a claim's key in Redis.
const alertClaimPrefix = "levqor:alert-claim:"

// claimTimeout bounds a claim or a release. Alerts are delivered one
// at a time, and those that matter most come while a store is failing: a
// claim that hangs (PostgreSQL partitioned away) would hold back every
// alert behind it. When it times out, the alert is delivered anyway.
const claimTimeout = 2 * time.Second

// redisClaims keeps claims as Redis keys that expire with them.
type redisClaims struct {
	rdb    redis.UniversalClient
	holder string
	now    func() time.Time
}

var _ alert.Claimer = (*redisClaims)(nil)

func (c *redisClaims) Claim(ctx context.Context, key string, ttl time.Duration) (bool, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	k := alertClaimPrefix + key
	ok, err := c.rdb.SetNX(ctx, k, c.holder, ttl).Result()
	if err != nil || ok {
		return ok, time.Time{}, err
	}
	left, err := c.rdb.PTTL(ctx, k).Result()
	if err != nil || left > ttl {
		left = ttl // claimed elsewhere; its end unknown: at most ttl away
	}
	return false, c.now().Add(max(0, left)), nil
}

// releaseClaimScript deletes a claim only if this process still holds it.
var releaseClaimScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func (c *redisClaims) Release(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	return releaseClaimScript.Run(ctx, c.rdb, []string{alertClaimPrefix + key}, c.holder).Err()
}

// sqlClaims keeps claims in the alert_claims table (migration 0007):
// a claim lands only on a row that is absent or whose claim has ended.
// `sitemap submit --if-due` claims its run there too, on either database.
type sqlClaims struct {
	db     *database
	holder string
	now    func() time.Time
}

var _ alert.Claimer = (*sqlClaims)(nil)

func (c *sqlClaims) Claim(ctx context.Context, key string, ttl time.Duration) (bool, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	now := c.now()
	res, err := c.db.ExecContext(ctx, `INSERT INTO alert_claims (alert_key, holder, until_ms) VALUES (?, ?, ?)
		ON CONFLICT (alert_key) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
		WHERE alert_claims.until_ms <= ?`, key, c.holder, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, time.Time{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, time.Time{}, err
	}
	var until int64
	switch err := c.db.QueryRowContext(ctx, `SELECT until_ms FROM alert_claims WHERE alert_key = ?`, key).Scan(&until); {
	case errors.Is(err, sql.ErrNoRows): // released meanwhile: the next occurrence claims it
		return false, now, nil
	case err != nil:
		return false, now.Add(ttl), nil // claimed elsewhere; its end unknown: at most ttl away
	}
	return false, time.UnixMilli(min(until, now.Add(ttl).UnixMilli())), nil
}

func (c *sqlClaims) Release(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	_, err := c.db.ExecContext(ctx, `DELETE FROM alert_claims WHERE alert_key = ? AND holder = ?`, key, c.holder)
	return err
}

// replicaAlerts adds the replica's name to the alerts it raises, where
// several replicas may raise them: with shared claims, the one delivered
// says whose figures it carries.
type replicaAlerts struct {
	next alert.Notifier
	name string
}

func (r replicaAlerts) Notify(ctx context.Context, al alert.Alert) error {
	al.Fields = append(append([]alert.Field(nil), al.Fields...), alert.Field{Key: "Replica", Value: r.name})
	return r.next.Notify(ctx, al)
}
