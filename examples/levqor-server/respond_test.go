package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// TestStoreUnavailable: outages (no connection, a dead one, no answer in
// time) answer 503; other store errors stay 500.
func TestStoreUnavailable(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"request deadline passed", cancelled, errors.New("pgx: conn closed"), true},
		{"deadline exceeded", context.Background(), fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"bad connection", context.Background(), driver.ErrBadConn, true},
		{"connection refused", context.Background(), fmt.Errorf("failed to connect: %w", refused), true},
		{"read timeout (Redis frozen)", context.Background(), &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"broken connection", context.Background(), fmt.Errorf("query: %w", io.ErrUnexpectedEOF), true},
		{"no rows", context.Background(), sql.ErrNoRows, false},
		{"constraint", context.Background(), errors.New("UNIQUE constraint failed: users.email"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := storeUnavailable(tc.ctx, tc.err); got != tc.want {
				t.Fatalf("storeUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
