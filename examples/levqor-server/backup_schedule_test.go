package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
)

// scheduleApps opens the server's database on each engine.
func scheduleApps(t *testing.T, run func(t *testing.T, a *app)) {
	for _, tc := range []struct {
		name      string
		configure func(t *testing.T, c *config)
	}{
		{"sqlite", func(*testing.T, *config) {}},
		{"postgres", func(t *testing.T, c *config) { c.DatabaseURL = pgtest.NewDatabase(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.DataDir = t.TempDir()
			tc.configure(t, &cfg)
			a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.close)
			run(t, a)
		})
	}
}

// TestBackupSchedule: two replicas ("one", "two") on one database, on a
// fixed clock, take turns through the schedule: one claim per record, the
// holder's lease keeps the other off while renewed and lets it take over
// once it lapses (the holder died), a recorded backup sets the next due
// time for both, an older one never moves it back, and a failure holds
// both off until its retry time.
func TestBackupSchedule(t *testing.T) {
	scheduleApps(t, func(t *testing.T, a *app) {
		ctx := context.Background()
		clock := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { return clock }
		one, two := newBackupSchedule(a.db), newBackupSchedule(a.db)
		one.now, two.now = now, now
		const interval = time.Hour
		read := func(s *backupSchedule) scheduleRow {
			t.Helper()
			r, err := s.read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		claim := func(s *backupSchedule, r scheduleRow, want bool, why string) {
			t.Helper()
			if won, err := s.claim(ctx, r); err != nil || won != want {
				t.Fatalf("%s: claim = %v, %v; want %v", why, won, err, want)
			}
		}
		wantDue := func(r scheduleRow, local, want time.Time, why string) {
			t.Helper()
			if got := r.due(local, interval, clock); !got.Equal(want) {
				t.Fatalf("%s: due %v, want %v (record %+v)", why, got, want, r)
			}
		}

		r1, r2 := read(one), read(two)
		wantDue(r1, time.Time{}, time.Time{}, "nothing recorded, no local backup")
		local := clock.Add(-20 * time.Minute)
		wantDue(r1, local, local.Add(interval), "a local backup made before the record")

		claim(one, r1, true, "first claim")
		claim(two, r2, false, "a claim on the record the first one changed")
		r2 = read(two)
		wantDue(r2, time.Time{}, clock.Add(backupLease), "while one holds the lease")
		claim(two, r2, false, "a claim while the lease runs")

		clock = clock.Add(backupLease * 3 / 4)
		if err := one.renew(ctx); err != nil {
			t.Fatal(err)
		}
		wantDue(read(two), time.Time{}, clock.Add(backupLease), "after a renewal")

		made := clock.Add(-time.Second)
		if err := one.done(ctx, made, "backup-1.db"); err != nil {
			t.Fatal(err)
		}
		r2 = read(two)
		if r2.lastName != "backup-1.db" || r2.lastBy != one.holder || r2.holder != "" || !r2.lease.IsZero() {
			t.Fatalf("after done: %+v", r2)
		}
		wantDue(r2, local, made.Add(interval), "after a recorded backup")
		// The backup command, slower, records an older backup afterwards.
		if err := two.done(ctx, made.Add(-time.Minute), "backup-0.db"); err != nil {
			t.Fatal(err)
		}
		if r := read(one); r.lastName != "backup-1.db" || !r.last.Equal(made) {
			t.Fatalf("an older backup moved the record back: %+v", r)
		}

		// Due again: one claims, then dies without renewing; two takes over
		// once the lease has lapsed, and one's late record leaves two's
		// lease alone.
		clock = made.Add(interval)
		r1, r2 = read(one), read(two)
		wantDue(r1, time.Time{}, made.Add(interval), "an interval later")
		claim(one, r1, true, "claim an interval later")
		claim(two, r2, false, "the other's claim an interval later")
		clock = clock.Add(backupLease + time.Second)
		r2 = read(two)
		wantDue(r2, time.Time{}, made.Add(interval), "after the holder's lease lapsed")
		claim(two, r2, true, "take over a lapsed lease")
		late := clock.Add(-time.Minute)
		if err := one.done(ctx, late, "backup-late.db"); err != nil {
			t.Fatal(err)
		}
		if r := read(one); r.holder != two.holder || !r.lease.After(clock) || r.lastName != "backup-late.db" {
			t.Fatalf("the dead holder's late record: %+v", r)
		}

		// A failure: neither tries again before the retry time.
		clock = late.Add(interval)
		claim(two, read(two), true, "claim after the late backup")
		retry := clock.Add(10 * time.Minute)
		if err := two.failed(ctx, retry); err != nil {
			t.Fatal(err)
		}
		r1 = read(one)
		if r1.holder != "" {
			t.Fatalf("the lease outlived the failure: %+v", r1)
		}
		wantDue(r1, time.Time{}, retry, "after a failure")
	})
}

// TestBackupScheduleClaimsOnce: eight replicas that read the record at
// once and claim it at once: exactly one claim lands.
func TestBackupScheduleClaimsOnce(t *testing.T) {
	scheduleApps(t, func(t *testing.T, a *app) {
		ctx := context.Background()
		const replicas = 8
		var ready, wg sync.WaitGroup
		ready.Add(replicas)
		start := make(chan struct{})
		won := make(chan bool, replicas)
		for range replicas {
			wg.Go(func() {
				s := newBackupSchedule(a.db)
				r, err := s.read(ctx)
				ready.Done()
				if err != nil {
					t.Error(err)
					return
				}
				<-start
				ok, err := s.claim(ctx, r)
				if err != nil {
					t.Error(err)
				}
				won <- ok
			})
		}
		ready.Wait()
		close(start)
		wg.Wait()
		close(won)
		n := 0
		for ok := range won {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d of %d claims landed, want 1", n, replicas)
		}
	})
}
