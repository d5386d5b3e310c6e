package spendguard_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/spendguard"
)

// sqlEngines opens, per engine, a function giving each caller its own
// *sql.DB on one database, as separate processes have.
func sqlEngines(t *testing.T, run func(t *testing.T, open func() *sql.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		path := sqlitetest.Path(t)
		run(t, func() *sql.DB { return sqlitetest.Open(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		run(t, func() *sql.DB {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

func newSQLMemory(t *testing.T, db *sql.DB) *spendguard.SQLMemory {
	t.Helper()
	m, err := spendguard.NewSQLMemory(context.Background(), spendguard.SQLMemoryConfig{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSQLMemory: the record round-trips between processes, a damaged one
// is an error, and a lock held by one process keeps another waiting until
// it is released (or the waiter's context ends).
func TestSQLMemory(t *testing.T) {
	sqlEngines(t, func(t *testing.T, open func() *sql.DB) {
		ctx := context.Background()
		dbA, dbB := open(), open()
		a, b := newSQLMemory(t, dbA), newSQLMemory(t, dbB)
		if m, err := b.Load(ctx); err != nil || m.Day != "" || m.Alarmed != nil {
			t.Fatalf("a new table: %+v, %v", m, err)
		}
		want := spendguard.Memo{Day: "2026-11-26", Alarmed: []int{50, 80}, Forecast: []int{100}, Unknown: true, Paused: "2026-11-26"}
		if err := a.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := b.Load(ctx)
		if err != nil || got.Day != want.Day || len(got.Alarmed) != 2 || got.Alarmed[1] != 80 || !got.Unknown || got.Paused != want.Paused || len(got.Forecast) != 1 {
			t.Fatalf("loaded %+v, %v; saved %+v", got, err, want)
		}

		unlock, err := a.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err = b.Lock(short)
		cancel()
		if err == nil {
			t.Fatal("a second process took the lock while the first held it")
		}
		got2 := make(chan error, 1)
		go func() {
			unlockB, err := b.Lock(ctx)
			if err == nil {
				unlockB()
			}
			got2 <- err
		}()
		select {
		case err := <-got2:
			t.Fatalf("the waiter got the lock before it was released: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		unlock()
		select {
		case err := <-got2:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the waiter never got the released lock")
		}

		if _, err := dbA.Exec(`UPDATE levqor_spend_memory SET memo = 'not json' WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Load(ctx); err == nil || !strings.Contains(err.Error(), "not a Memo") {
			t.Fatalf("a damaged record: %v", err)
		}
	})
}

// TestSQLMemoryOnePostgresConnection: a pool of one PostgreSQL
// connection would wait for itself (the lock holds it, the Check needs
// another): refused when building, not hung at the first Check.
func TestSQLMemoryOnePostgresConnection(t *testing.T) {
	db := pgtest.Open(t)
	db.SetMaxOpenConns(1)
	if _, err := spendguard.NewSQLMemory(context.Background(), spendguard.SQLMemoryConfig{DB: db}); err == nil || !strings.Contains(err.Error(), "at least two connections") {
		t.Fatalf("a pool of one: %v", err)
	}
	db.SetMaxOpenConns(2)
	newSQLMemory(t, db)
}

// TestSQLMemoryOverlappingRuns: six processes' Guards, each made anew
// with its own SQLMemory on one database (cron on six replicas), check at
// once after spend crossed 50% and 80%: two alerts between them, one
// pause. With a Memory that does not lock, the runs that overlap each
// alert.
func TestSQLMemoryOverlappingRuns(t *testing.T) {
	sqlEngines(t, func(t *testing.T, open func() *sql.DB) {
		src := &fixedSource{name: "api"}
		src.set(4500, nil) // 90% of the default $50
		// Late in the day: the forecast stays below the limit.
		clk := testclock.New(day.Add(23*time.Hour + 59*time.Minute))
		al := &alerts{}
		var mu sync.Mutex
		pauses := 0
		pause := spendguard.PauseFunc(func(context.Context, string) error {
			mu.Lock()
			defer mu.Unlock()
			pauses++
			return nil
		})
		const runs = 6
		var ready, wg sync.WaitGroup
		ready.Add(runs)
		start := make(chan struct{})
		for range runs {
			g, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Notifier: al, Now: clk.Now,
				Memory: newSQLMemory(t, open()), Pauser: pause, Limit: spendguard.DefaultDailyLimit()})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				ready.Done()
				<-start
				if _, err := g.Check(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		ready.Wait()
		close(start)
		wg.Wait()
		if titles := al.titles(); len(titles) != 2 {
			t.Fatalf("%d alerts from %d overlapping runs, want 2 (50%% and 80%%): %q", len(titles), runs, titles)
		}

		src.set(5000, nil) // 100%: one pause between them
		start = make(chan struct{})
		ready.Add(runs)
		for range runs {
			g, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Notifier: al, Now: clk.Now,
				Memory: newSQLMemory(t, open()), Pauser: pause})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				ready.Done()
				<-start
				if c, err := g.Check(context.Background()); err != nil || !c.Paused {
					t.Errorf("check at 100%%: paused %v, %v", c.Paused, err)
				}
			})
		}
		ready.Wait()
		close(start)
		wg.Wait()
		if pauses != 1 || len(al.titles()) != 3 {
			t.Fatalf("at 100%%: %d pauses, alerts %q", pauses, al.titles())
		}
	})
}

// TestSQLMemoryLockFails: a Guard whose Memory cannot be locked or read
// (its database is closed) reports the errors and still alerts: a
// repeated alert beats a missed one.
func TestSQLMemoryLockFails(t *testing.T) {
	db := sqlitetest.Open(t, sqlitetest.Path(t))
	mem := newSQLMemory(t, db)
	al := &alerts{}
	src := &fixedSource{name: "api"}
	src.set(4500, nil)
	g, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Notifier: al, Memory: mem,
		Now: testclock.New(day.Add(23 * time.Hour)).Now})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := g.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "memory lock") || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("check with a closed database: %v", err)
	}
	if titles := al.titles(); len(titles) != 2 {
		t.Fatalf("alerts without the memory: %q, want 50%% and 80%%", titles)
	}
}
