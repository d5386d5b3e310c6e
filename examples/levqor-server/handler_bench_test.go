package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHandler is the server's whole handler chain in process (no
// sockets): what one request costs the server, for profiling the chain.
func BenchmarkHandler(b *testing.B) {
	cfg := defaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.RateLimit.Limit, cfg.RateLimit.Burst = 50_000_000, 50_000_000
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.close()
	h, err := a.routes()
	if err != nil {
		b.Fatal(err)
	}
	pair, err := a.tokens.Issue(context.Background(), "user-1")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.db.Exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('user-1', 'u@example.com', 'x', '2026-01-01T00:00:00Z')`); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, path, token string }{
		{"healthz", "/healthz", ""},
		{"me", "/api/me", pair.AccessToken},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", tc.path, nil)
			r.RemoteAddr = "127.0.0.1:5000"
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, strings.TrimSpace(w.Body.String()))
				}
			}
		})
	}
}
