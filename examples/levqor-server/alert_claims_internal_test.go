package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/tcpproxy"
)

// TestSQLAlertClaims: on either database, one claim lands per key until
// it ends; a refused claim learns when the holder's ends; only the holder
// releases it; a claim that ended is taken again.
func TestSQLAlertClaims(t *testing.T) {
	for _, url := range []string{"", pgtest.NewDatabase(t)} {
		db := migratedDB(t, url)
		ctx := context.Background()
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		a := &sqlClaims{db: db, holder: "replica a", now: func() time.Time { return now }}
		b := &sqlClaims{db: db, holder: "replica b", now: func() time.Time { return now }}
		if ok, _, err := a.Claim(ctx, "k", time.Hour); !ok || err != nil {
			t.Fatalf("%s: first claim: %v %v", db.dialect, ok, err)
		}
		if ok, until, err := b.Claim(ctx, "k", time.Hour); ok || err != nil || !until.Equal(now.Add(time.Hour)) {
			t.Fatalf("%s: second claim: %v until %v, %v; want refused until %v", db.dialect, ok, until, err, now.Add(time.Hour))
		}
		if err := b.Release(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := b.Claim(ctx, "k", time.Hour); ok {
			t.Fatalf("%s: replica b released replica a's claim", db.dialect)
		}
		if err := a.Release(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := b.Claim(ctx, "k", time.Hour); !ok || err != nil {
			t.Fatalf("%s: claim after release: %v %v", db.dialect, ok, err)
		}
		now = now.Add(time.Hour)
		if ok, _, err := a.Claim(ctx, "k", time.Hour); !ok || err != nil {
			t.Fatalf("%s: claim after the claim ended: %v %v", db.dialect, ok, err)
		}
	}
}

// TestAlertClaimsWhilePostgresHangs: with PostgreSQL partitioned away
// (connections open, nothing answered), a claim gives up within
// claimTimeout, so the alert behind it is delivered anyway instead
// of waiting, with every alert queued after it, for as long as the
// partition lasts.
func TestAlertClaimsWhilePostgresHangs(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	db, err := openDB(config{DatabaseURL: u.String(), DatabaseMaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	if err := migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	b := &sqlClaims{db: db, holder: "replica b", now: time.Now}
	proxy.Freeze()
	defer proxy.Thaw()
	t0 := time.Now()
	_, _, err = b.Claim(ctx, "other", time.Hour)
	if d := time.Since(t0); err == nil || d > claimTimeout+time.Second {
		t.Fatalf("a claim with PostgreSQL partitioned away: %v after %v; want an error within %v", err, d, claimTimeout)
	}
}
