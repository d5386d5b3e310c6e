package main

import (
	"net/http"
	"sync"

	"github.com/levqor/levqor/tokens"
)

// exportGate bounds the DSAR exports streaming at once. An export holds a
// database connection while it writes the account's data, for as long as
// the client takes to read it (up to the write timeout): without a bound,
// one user with a large account starting a few exports and reading
// nothing held every pooled connection, and every login, registration and
// token check waited a minute. At most a quarter of the pool (at least
// one) serves exports, each subject one at a time; the others get 503
// with Retry-After at once.
type exportGate struct {
	mu      sync.Mutex
	max     int
	running map[string]bool // subject → an export of theirs is streaming
}

// exportRetryAfter is the Retry-After of a refused export, in seconds.
const exportRetryAfter = "10"

func newExportGate(databaseConns int) *exportGate {
	return &exportGate{max: max(1, databaseConns/4), running: map[string]bool{}}
}

// enter takes a slot for subject; false if its export is already running
// or every slot is taken.
func (g *exportGate) enter(subject string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[subject] || len(g.running) >= g.max {
		return false
	}
	g.running[subject] = true
	return true
}

func (g *exportGate) leave(subject string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.running, subject)
}

// handler runs next (the export) in a slot; it follows requireAuth.
func (g *exportGate) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := tokens.FromContext(r.Context())
		if !ok { // requireAuth answers first; this is only a guard
			writeError(w, http.StatusUnauthorized, "a Bearer access token is required")
			return
		}
		if !g.enter(c.Subject) {
			w.Header().Set("Retry-After", exportRetryAfter)
			writeError(w, http.StatusServiceUnavailable, "too many exports at once, or yours is still running; retry shortly")
			return
		}
		defer g.leave(c.Subject)
		next.ServeHTTP(w, r)
	})
}
