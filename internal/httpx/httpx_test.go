package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/levqor/levqor/internal/httpx"
)

func TestStatusRecorderFinalStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"nothing", func(w http.ResponseWriter) {}, 200},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, 200},
		{"500", func(w http.ResponseWriter) { w.WriteHeader(500) }, 500},
		{"103 then 500", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(500) }, 500},
		{"100 then 201", func(w http.ResponseWriter) { w.WriteHeader(100); w.WriteHeader(201) }, 201},
		{"404 then 500 (ignored by net/http)", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404},
		{"101", func(w http.ResponseWriter) { w.WriteHeader(101) }, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httpx.NewStatusRecorder(httptest.NewRecorder())
			tc.write(rec)
			if got := rec.Status(); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}
