package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
)

// TestHousekeeping: expired token records are deleted, and with them the
// sessions of logins that can no longer be used (expired, revoked, or
// unknown to the store), in batches; a session that can still be
// refreshed is kept, so account deletion still revokes it; Stripe event
// ids are forgotten after stripeEventsKept and security-log rows after
// LEVQOR_AUDIT_RETENTION (never when it is 0). The same on each token
// store the server uses.
func TestHousekeeping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(t *testing.T, c *config)
		sqlStore  bool // expired records are deleted by housekeeping (Redis expires its own)
	}{
		{"sqlite", func(*testing.T, *config) {}, true},
		{"postgres", func(t *testing.T, c *config) { c.DatabaseURL = pgtest.NewDatabase(t) }, true},
		{"redis", func(t *testing.T, c *config) { c.RedisURL = "redis://" + redistest.Start(t).Addr() + "/0" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := defaultConfig()
			cfg.DataDir = t.TempDir()
			tc.configure(t, &cfg)
			a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.close)
			now := time.Now()
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := a.db.ExecContext(ctx, q, args...); err != nil {
					t.Fatal(err)
				}
			}
			exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'u1@example.com', 'x', '2026-01-01T00:00:00Z')`)
			session := func(family, checkAfter string) {
				exec(`INSERT INTO sessions (family_id, user_id, created_at, user_agent, check_after) VALUES (?, 'u1', '2026-01-01T00:00:00Z', '', ?)`, family, checkAfter)
			}
			live, err := a.tokens.Issue(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			session(live.Family, "") // recorded before check_after existed
			revoked, err := a.tokens.Issue(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.tokens.RevokeFamily(ctx, revoked.Family); err != nil {
				t.Fatal(err)
			}
			session(revoked.Family, "")
			if err := a.backing.CreateFamily(ctx, "expired", "u1", "jti-expired", now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			session("expired", "")
			// Not due: kept without asking the store, though its family is gone.
			notDue := now.Add(time.Hour).UTC().Format(time.RFC3339)
			session("gone-not-due", notDue)
			// Three batches of sessions whose families the store never knew.
			for i := range 2*housekeepingBatch + 7 {
				session(fmt.Sprintf("unknown-%d", i), "")
			}

			for id, at := range map[string]time.Time{
				"evt_old":    now.Add(-stripeEventsKept - time.Second),
				"evt_recent": now.Add(-stripeEventsKept + time.Minute),
			} {
				exec(`INSERT INTO stripe_events (id, type, received_at) VALUES (?, 'invoice.paid', ?)`, id, at.UTC().Format(time.RFC3339))
			}

			for action, at := range map[string]time.Time{
				"old":    now.Add(-cfg.AuditRetention - time.Second),
				"recent": now.Add(-cfg.AuditRetention + time.Minute),
			} {
				exec(`INSERT INTO audit_log (user_id, at, action) VALUES ('u1', ?, ?)`, at.UTC().Format(time.RFC3339), action)
			}

			done, err := a.housekeeping(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if actions := column(t, a, `SELECT action FROM audit_log`); done.auditRows != 1 || len(actions) != 1 || actions[0] != "recent" {
				t.Errorf("security log: deleted %d, left %v; want the row past LEVQOR_AUDIT_RETENTION deleted", done.auditRows, actions)
			}
			if events := column(t, a, `SELECT id FROM stripe_events`); done.stripeEvents != 1 || len(events) != 1 || events[0] != "evt_recent" {
				t.Errorf("stripe events: deleted %d, left %v; want the old one deleted, the recent one kept", done.stripeEvents, events)
			}
			if want := 2 + 2*housekeepingBatch + 7; done.sessions != want { // revoked, expired, unknown
				t.Errorf("sessions deleted: %d, want %d", done.sessions, want)
			}
			if tc.sqlStore && done.tokenRecords < 1 {
				t.Errorf("token records deleted: %d, want the expired family's at least", done.tokenRecords)
			}
			remaining := map[string]string{}
			for _, row := range column(t, a, `SELECT family_id || ' ' || check_after FROM sessions`) {
				f, c, _ := strings.Cut(row, " ")
				remaining[f] = c
			}
			wantLive := now.Add(sessionCheckDelay).UTC().Format(time.RFC3339)
			if len(remaining) != 2 || remaining[live.Family] != wantLive || remaining["gone-not-due"] != notDue {
				t.Fatalf("sessions left: %v; want the live one (next check %s) and the one not due", remaining, wantLive)
			}
			if dead, err := a.backing.Revoked(ctx, live.Family, ""); err != nil || dead {
				t.Fatalf("live family revoked %v (%v) after housekeeping", dead, err)
			}
			if _, err := a.tokens.Refresh(ctx, live.RefreshToken); err != nil {
				t.Fatalf("the live login can no longer refresh: %v", err)
			}

			// A second run finds nothing due.
			if done, err := a.housekeeping(ctx, now); err != nil || done != (housekept{}) {
				t.Fatalf("second run: %+v, %v; want nothing deleted", done, err)
			}

			// LEVQOR_AUDIT_RETENTION=0 keeps the security log forever.
			a.cfg.AuditRetention = 0
			exec(`INSERT INTO audit_log (user_id, at, action) VALUES ('u1', '2001-01-01T00:00:00Z', 'ancient')`)
			if done, err := a.housekeeping(ctx, now); err != nil || done.auditRows != 0 || len(column(t, a, `SELECT action FROM audit_log WHERE action = 'ancient'`)) != 1 {
				t.Fatalf("with retention 0: %+v, %v; want the security log kept", done, err)
			}
		})
	}
}

// column reads the first column of q's rows as strings.
func column(t *testing.T, a *app, q string) []string {
	t.Helper()
	rows, err := a.db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
