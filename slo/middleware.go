package slo

import (
	"net/http"

	"github.com/levqor/levqor/internal/httpx"
)

// Middleware records every request as one event: good when its final
// status (informational 1xx responses do not count) is below 500 and, with a LatencyThreshold, it finished within it. A handler
// that panics is recorded as bad before the panic continues.
func (t *Tracker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := t.cfg.Now()
		sw := httpx.NewStatusRecorder(w)
		panicked := true
		defer func() {
			end := t.cfg.Now()
			latency := end.Sub(start)
			good := !panicked && sw.Status() < 500 && (t.cfg.LatencyThreshold == 0 || latency <= t.cfg.LatencyThreshold)
			t.ObserveAt(end, latency, good)
		}()
		next.ServeHTTP(sw, r)
		panicked = false
	})
}
