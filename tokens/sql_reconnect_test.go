package tokens_test

import (
	"context"
	"database/sql"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/tcpproxy"
	"github.com/levqor/levqor/tokens"
)

// TestSQLStoreRevokedAfterConnectionsBreak: when PostgreSQL restarts or
// fails over, every pooled connection is broken and fails the next
// statement sent on it. Revoked only reads, so it sends its query again
// on another connection (without the retry, a check failed here), and
// calls OnConnLost first, so that the owner of the *sql.DB can close the
// idle connections (TestPostgresReconnects in levqor-server shows what
// that spares a busy server).
func TestSQLStoreRevokedAfterConnectionsBreak(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pooled int
		close  bool // OnConnLost closes the idle connections
	}{
		{"two pooled connections", 2, false},
		{"six pooled connections, OnConnLost", 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			proxy := tcpproxy.Start(t, u.Host)
			u.Host = proxy.Addr()
			db, err := sql.Open("pgx", u.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			db.SetMaxOpenConns(tc.pooled)
			db.SetMaxIdleConns(tc.pooled)
			cfg := tokens.SQLConfig{DB: db}
			var lost atomic.Int64
			if tc.close {
				cfg.OnConnLost = func() {
					lost.Add(1)
					db.SetMaxIdleConns(0)
					db.SetMaxIdleConns(tc.pooled)
				}
			}
			ctx := context.Background()
			s, err := tokens.NewSQLStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateFamily(ctx, "fam", "alice", "jti-1", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			// Open every connection: hold each while taking the next.
			var held []*sql.Conn
			for range tc.pooled {
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, conn)
			}
			for _, c := range held {
				c.Close()
			}
			if n := db.Stats().Idle; n != tc.pooled {
				t.Fatalf("%d idle connections, want %d", n, tc.pooled)
			}
			proxy.Cut()
			// As many checks at once as connections were pooled, as a
			// busy server makes them.
			var wg sync.WaitGroup
			for i := range tc.pooled {
				wg.Go(func() {
					if revoked, err := s.Revoked(ctx, "fam", "jti-1"); err != nil || revoked {
						t.Errorf("check %d after every connection broke: revoked %v, error %v; want a live token", i+1, revoked, err)
					}
				})
			}
			wg.Wait()
			if tc.close && lost.Load() == 0 {
				t.Error("OnConnLost was not called")
			}
		})
	}
}
