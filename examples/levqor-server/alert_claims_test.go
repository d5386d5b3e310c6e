package main_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
)

// TestReplicasAlertOnce: three replicas that each raise the same alert
// (housekeeping, run by each at start, failing against the shared
// database) deliver it once between them, naming the replica whose alert
// it is: through the alert_claims table when the replicas share
// PostgreSQL alone, through Redis when they share it too. Before, each
// replica delivered its own: three alerts for one fault.
func TestReplicasAlertOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"postgres", false}, {"redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			tg := newFakeTelegram(t)
			env := append(tg.env(), "LEVQOR_DATABASE_URL="+url,
				"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes")
			if tc.redis {
				env = append(env, "LEVQOR_REDIS_URL=redis://"+redistest.Start(t).Addr())
			}
			// A first server migrates the database; then every delete
			// from stripe_events fails, as housekeeping's third step does.
			first := launch(t, env...)
			first.waitHealthy()
			first.stop()
			if n := countContaining(tg.sent(), "Housekeeping failed"); n != 0 {
				t.Fatalf("housekeeping failed on a healthy database: %q", tg.sent())
			}
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{
				`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'stripe_events is read-only'; END $$`,
				`CREATE TRIGGER refuse_delete BEFORE DELETE ON stripe_events FOR EACH STATEMENT EXECUTE FUNCTION refuse()`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}

			var replicas []*server
			for range 3 {
				replicas = append(replicas, launch(t, env...))
			}
			for _, r := range replicas {
				r.waitHealthy()
			}
			// Each replica raises it: its log says so.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				raised := 0
				for _, r := range replicas {
					if strings.Contains(r.logs.String(), `msg="housekeeping failed"`) {
						raised++
					}
				}
				if raised == len(replicas) && len(tg.sent()) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of 3 replicas logged the failure, %d alerts sent", raised, len(tg.sent()))
				}
			}
			time.Sleep(500 * time.Millisecond) // a second delivery, if any, would have arrived
			sent := tg.sent()
			if n := countContaining(sent, "Housekeeping failed"); n != 1 {
				t.Fatalf("three replicas delivered %d alerts for one fault; want 1:\n%s", n, strings.Join(sent, "\n---\n"))
			}
			if !strings.Contains(sent[0], "Replica") || !strings.Contains(sent[0], "pid") {
				t.Fatalf("the alert does not name its replica:\n%s", sent[0])
			}
		})
	}
}
