package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
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

// TestDecodeErrors: a body of the wrong shape is answered in the client's
// terms, never with Go's type names.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[]`, "invalid JSON: the body must be a JSON object"},
		{`"x"`, "invalid JSON: the body must be a JSON object"},
		{`{"email": 123}`, `invalid JSON: "email" must be a string, not number`},
		{`{"email": ["a"]}`, `invalid JSON: "email" must be a string, not array`},
		{`{"password": {}}`, `invalid JSON: "password" must be a string, not object`},
		{`{"name": "x"}`, `invalid JSON: unknown field "name"`},
		{`{"email": "a@b.c",}`, "invalid JSON: invalid character '}' looking for beginning of object key string"},
		{`{} {}`, "invalid JSON: more than one value"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var c credentials
			if decode(rec, httptest.NewRequest("POST", "/api/auth/register", strings.NewReader(tc.body)), &c) {
				t.Fatal("decoded")
			}
			var got struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 400 || got.Error != tc.want {
				t.Fatalf("%d %q, want 400 %q", rec.Code, rec.Body.String(), tc.want)
			}
		})
	}
}
