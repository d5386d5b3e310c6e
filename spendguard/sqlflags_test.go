package spendguard_test

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/spendguard"
)

// TestSQLFlags: two processes' SQLFlags on one database (replicas, or a
// cron job and the server) see each other's pauses and resumes, on
// SQLite and PostgreSQL.
func TestSQLFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"sqlite", func(t *testing.T) *sql.DB { return sqlitetest.Open(t, sqlitetest.Path(t)) }},
		{"postgres", func(t *testing.T) *sql.DB { return pgtest.Open(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			ctx := t.Context()
			clock := testclock.New(time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC))
			newFlags := func(cacheFor time.Duration) *spendguard.SQLFlags {
				t.Helper()
				f, err := spendguard.NewSQLFlags(ctx, spendguard.SQLFlagsConfig{DB: db, Now: clock.Now, CacheFor: cacheFor})
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			cron, replica := newFlags(-1), newFlags(0) // the replica caches for the default second
			state := func(f *spendguard.SQLFlags) spendguard.PauseState {
				t.Helper()
				st, err := f.State(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			if st := state(replica); st.Paused || !st.Since.IsZero() {
				t.Fatalf("a new table: %+v", st)
			}
			clock.Advance(spendguard.DefaultSQLFlagsCacheFor)
			t0 := clock.Now()
			if err := cron.Pause(ctx, "daily spend at 100%"); err != nil {
				t.Fatal(err)
			}
			if st := state(replica); !st.Paused || st.Reason != "daily spend at 100%" || !st.Since.Equal(t0) {
				t.Fatalf("the replica after the cron job paused: %+v", st)
			}
			clock.Advance(time.Hour)
			if err := cron.Pause(ctx, "forecast"); err != nil {
				t.Fatal(err)
			}
			if st := state(cron); !st.Paused || st.Reason != "forecast" || !st.Since.Equal(t0) {
				t.Fatalf("a second pause moved the start or kept the old reason: %+v", st)
			}
			// The replica's read is cached for a second, then the news shows.
			if st := state(replica); !st.Paused || st.Reason != "forecast" {
				t.Fatalf("the replica after the second pause: %+v", st)
			}
			if err := cron.Resume(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			t1 := clock.Now()
			if st := state(replica); !st.Paused {
				t.Fatalf("the replica's cached read changed within its second: %+v", st)
			}
			clock.Advance(spendguard.DefaultSQLFlagsCacheFor)
			if st := state(replica); st.Paused || st.Operator != "alice" || !st.Resumed.Equal(t1) || st.Reason != "" {
				t.Fatalf("the replica after the resume: %+v", st)
			}
			// A process sees its own change at once, cache or not.
			if err := replica.Pause(ctx, "manual"); err != nil {
				t.Fatal(err)
			}
			if st := state(replica); !st.Paused || st.Reason != "manual" || !st.Since.Equal(clock.Now()) {
				t.Fatalf("the replica's own pause: %+v", st)
			}

			// Billable routes on the replica: 503 while paused, and closed
			// when the state cannot be read.
			h := spendguard.BlockWhilePaused(replica)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			status := func() int {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/generate", nil))
				return rec.Code
			}
			if got := status(); got != 503 {
				t.Fatalf("while paused: %d", got)
			}
			if err := cron.Resume(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(spendguard.DefaultSQLFlagsCacheFor)
			if got := status(); got != 200 {
				t.Fatalf("after the resume: %d", got)
			}
			_ = db.Close()
			clock.Advance(spendguard.DefaultSQLFlagsCacheFor)
			if got := status(); got != 503 {
				t.Fatalf("database closed: %d, want 503 (fail closed)", got)
			}
		})
	}
}

// TestSQLFlagsConcurrent: replicas starting at once create the table
// once, and pauses and resumes from several at once all land.
func TestSQLFlagsConcurrent(t *testing.T) {
	db := pgtest.Open(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			f, err := spendguard.NewSQLFlags(ctx, spendguard.SQLFlagsConfig{DB: db, CacheFor: -1})
			if err != nil {
				errs <- err
				return
			}
			for j := range 10 {
				if (i+j)%2 == 0 {
					err = f.Pause(ctx, "limit")
				} else {
					err = f.Resume(ctx, "ops")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, err := spendguard.NewSQLFlags(ctx, spendguard.SQLFlagsConfig{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Pause(ctx, "final"); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM levqor_billing_pause`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows, %v", rows, err)
	}
}

func TestNewSQLFlagsValidates(t *testing.T) {
	if _, err := spendguard.NewSQLFlags(t.Context(), spendguard.SQLFlagsConfig{}); err == nil {
		t.Fatal("no DB accepted")
	}
}
