package main

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/tokens"
)

// Housekeeping: every login leaves a refresh family in the token store, a
// row in sessions and one in the security log, every Stripe event an id;
// without it all would grow for as long as the server runs.
const (
	// housekeepingInterval is how often each replica runs housekeeping
	// (and once at start).
	housekeepingInterval = time.Hour
	// housekeepingBatch is how many sessions one query reads.
	housekeepingBatch = 500
)

// stripeEventsKept is how long the id of a handled Stripe event is kept
// to recognise a redelivery: Stripe retries an event for up to three days,
// and each handler is idempotent per Stripe object besides.
const stripeEventsKept = 30 * 24 * time.Hour

// sessionCheckDelay is how long after a session is recorded, or found in
// use, housekeeping asks about it again: its family cannot expire sooner
// unless revoked, and then the next check finds it.
const sessionCheckDelay = tokens.DefaultRefreshTTL

// housekeeping deletes the token store's expired records (SQL stores;
// Redis expires its own), then the sessions whose refresh family is
// revoked or gone, then the ids of Stripe events handled over
// stripeEventsKept ago, the login throttle's ended windows, and the
// security-log rows older than
// LEVQOR_AUDIT_RETENTION (unless 0). Only the token store's answer removes a session,
// so a session that can still be refreshed is always kept, and account
// deletion still revokes it; a family the store does not know can never
// be used again (tokens.RevocationChecker), so the sessions removed need
// no revoking. Replicas may run it at once: each step is idempotent.
func (a *app) housekeeping(ctx context.Context, now time.Time) (done housekept, err error) {
	if done.tokenRecords, err = a.backing.CleanupExpired(ctx, now); err != nil {
		return done, fmt.Errorf("expired token records: %w", err)
	}
	if done.sessions, err = a.pruneSessions(ctx, now); err != nil {
		return done, fmt.Errorf("sessions: %w", err)
	}
	if done.stripeEvents, err = a.deleteBefore(ctx, "stripe_events", "received_at", now.Add(-stripeEventsKept)); err != nil {
		return done, fmt.Errorf("stripe events: %w", err)
	}
	// Ended login-throttle windows (sqlGuard): one row per email tried.
	res, err := a.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE window_ends <= ?`, now.UnixMilli())
	if err != nil {
		return done, fmt.Errorf("login throttle: %w", err)
	}
	n, _ := res.RowsAffected()
	done.loginWindows = int(n)
	if a.cfg.AuditRetention > 0 {
		if done.auditRows, err = a.deleteBefore(ctx, "audit_log", "at", now.Add(-a.cfg.AuditRetention)); err != nil {
			return done, fmt.Errorf("security log: %w", err)
		}
	}
	return done, nil
}

// deleteBefore deletes the rows of table whose RFC 3339 timestamp column
// (UTC, as every row is written) is before t; table and column are
// constants of this file.
func (a *app) deleteBefore(ctx context.Context, table, column string, t time.Time) (int, error) {
	res, err := a.db.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+column+` < ?`, t.UTC().Format(time.RFC3339))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// housekept counts what one housekeeping run deleted.
type housekept struct{ tokenRecords, sessions, stripeEvents, loginWindows, auditRows int }

// pruneSessions asks the token store about each session whose check is
// due: one whose family is revoked or gone is deleted, one in use is asked
// about again after sessionCheckDelay. It stops when none is due.
func (a *app) pruneSessions(ctx context.Context, now time.Time) (int, error) {
	due := now.UTC().Format(time.RFC3339)
	next := now.Add(sessionCheckDelay).UTC().Format(time.RFC3339)
	pruned := 0
	for {
		families, err := a.dueSessions(ctx, due)
		if err != nil {
			return pruned, err
		}
		var dead, live []string
		for _, f := range families {
			revoked, err := a.backing.Revoked(ctx, f, "")
			if err != nil {
				return pruned, err
			}
			if revoked {
				dead = append(dead, f)
			} else {
				live = append(live, f)
			}
		}
		// One transaction per batch: SQLite commits (and syncs) once, not
		// once per session, while requests wait for its one writer.
		err = a.db.inTx(ctx, func(tx tx) error {
			for _, f := range dead {
				if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE family_id = ?`, f); err != nil {
					return err
				}
			}
			for _, f := range live {
				if _, err := tx.ExecContext(ctx, `UPDATE sessions SET check_after = ? WHERE family_id = ?`, next, f); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return pruned, err
		}
		pruned += len(dead)
		if len(families) < housekeepingBatch {
			return pruned, nil
		}
	}
}

// dueSessions are up to housekeepingBatch sessions whose check is due.
func (a *app) dueSessions(ctx context.Context, due string) ([]string, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT family_id FROM sessions WHERE check_after <= ? ORDER BY check_after LIMIT ?`, due, housekeepingBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var families []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		families = append(families, f)
	}
	return families, rows.Err()
}

// runHousekeeping is one scheduled run: its outcome goes to the log.
func (a *app) runHousekeeping(ctx context.Context) {
	done, err := a.housekeeping(ctx, time.Now())
	attrs := []any{"token_records_deleted", done.tokenRecords, "sessions_deleted", done.sessions,
		"stripe_events_deleted", done.stripeEvents, "login_windows_deleted", done.loginWindows, "security_log_deleted", done.auditRows}
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Error("housekeeping failed", append(attrs, "err", err)...)
		// Unnoticed, the tables it keeps small grow without bound.
		_ = a.notify.Notify(ctx, alert.Alert{Severity: alert.SeverityWarning, Title: "Housekeeping failed",
			Message: err.Error(), Key: "housekeeping-failed", Fields: []alert.Field{{Key: "Retry", Value: "in " + housekeepingInterval.String()}}})
	case err == nil && done != housekept{}:
		a.log.Info("housekeeping", attrs...)
	}
}
