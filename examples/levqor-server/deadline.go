package main

import (
	"context"
	"net/http"
	"time"

	"github.com/levqor/levqor/internal/sqldialect"
)

// How long a request may wait when the database is PostgreSQL
// (withDeadline; README "Limits and abuse").
const (
	// requestTimeout bounds each request under /api/ and /webhooks/: far
	// above a healthy store's milliseconds, far below a client's
	// patience.
	requestTimeout = 5 * time.Second
	// exportTimeout bounds the DSAR export, which streams the account's
	// data while reading it: as long as the response may take to write.
	exportTimeout = writeTimeout
)

// withDeadline gives each request's context a deadline, so a PostgreSQL
// server that stops answering (a network partition, a hung host:
// connections stay open and nothing comes back) fails the request with a
// 503 after requestTimeout instead of holding it, its connection and a
// database connection for as long as the client waits.
//
// The embedded SQLite needs none (a local file; lock waits end at its
// busy timeout) and Redis commands have their own timeouts, so without
// PostgreSQL requests go without: a deadline costs a timer and a copy of
// the request, 5 allocations, 0.6 KB and about 1 µs per request
// (BenchmarkHandler), some 4% of the server's CPU per /api/me.
func (a *app) withDeadline(next http.Handler) http.Handler {
	if a.db.dialect != sqldialect.Postgres {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := requestTimeout
		if r.URL.Path == "/api/user/export" {
			d = exportTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
