package tokens_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/tcpproxy"
	"github.com/levqor/levqor/tokens"
)

// TestSQLStoreRevokedAfterConnectionsBreak: when PostgreSQL restarts or
// fails over, every pooled connection is broken and fails the next
// statement sent on it. Revoked only reads, so it sends its query again on
// another connection: with two pooled connections (fewer than its three
// attempts) no check fails, where the first failed before.
func TestSQLStoreRevokedAfterConnectionsBreak(t *testing.T) {
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
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	ctx := context.Background()
	s, err := tokens.NewSQLStore(ctx, tokens.SQLConfig{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, "fam", "alice", "jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		if revoked, err := s.Revoked(ctx, "fam", "jti-1"); err != nil || revoked {
			t.Fatalf("%s: revoked %v, error %v; want a live token", what, revoked, err)
		}
	}
	// Open both connections: hold one while taking the other.
	var held []*sql.Conn
	for range 2 {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	for _, c := range held {
		c.Close()
	}
	if n := db.Stats().Idle; n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	proxy.Cut()
	for i := range 4 {
		check(fmt.Sprintf("check %d after every connection broke", i+1))
	}
}
