package slo

import (
	"net/http"
)

// Middleware records every request as one event: good when its status is
// below 500 and, with a LatencyThreshold, it finished within it. A handler
// that panics is recorded as bad before the panic continues.
func (t *Tracker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := t.cfg.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		panicked := true
		defer func() {
			latency := t.cfg.Now().Sub(start)
			good := !panicked && sw.status < 500 && (t.cfg.LatencyThreshold == 0 || latency <= t.cfg.LatencyThreshold)
			t.Observe(latency, good)
		}()
		next.ServeHTTP(sw, r)
		panicked = false
	})
}

// statusWriter remembers the status code; Unwrap lets http.ResponseController
// reach the underlying writer's Flush, Hijack and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
