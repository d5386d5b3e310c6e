// Package httpx holds HTTP plumbing several Levqor packages share: a
// response writer that records the final status, and JSON replies.
package httpx

import (
	"encoding/json"
	"io"
	"net/http"
)

// StatusRecorder wraps a ResponseWriter and records the final status code
// written. Informational 1xx responses (103 Early Hints, 100 Continue)
// are not final: a handler may send one and then 500, and the 500 is what
// counts. 101 Switching Protocols is final. Unwrap lets
// http.ResponseController reach Flush, Hijack and deadlines.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w}
}

// WriteHeader implements http.ResponseWriter.
func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter; a body without a header is a 200.
func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Status is the final status written; 200 when the handler wrote nothing
// (net/http then sends 200).
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Written reports whether a final status was written.
func (s *StatusRecorder) Written() bool { return s.status != 0 }

// Unwrap returns the wrapped writer.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WriteJSON writes v as a JSON response with status, marked not cacheable
// (responses of Levqor's handlers are per-user or per-request).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteRawJSON writes body, already JSON, with the same headers as
// WriteJSON and a trailing newline; hot paths use it to skip the encoder.
func WriteRawJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}
