package main_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
)

// blackhole forwards TCP connections to target until frozen: then it
// holds every byte in both directions, new connections included, as a
// network partition or a hung host does, until thawed.
type blackhole struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		b.frozen.Store(false)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				b.wait()
				up, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				mu.Lock()
				conns = append(conns, c, up)
				mu.Unlock()
				wg.Go(func() { b.pipe(up, c) })
				b.pipe(c, up)
			})
		}
	})
	return b
}

func (b *blackhole) wait() {
	for b.frozen.Load() {
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		b.wait()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (b *blackhole) addr() string { return b.ln.Addr().String() }

// TestPostgresUnreachable: with PostgreSQL partitioned away (connections
// open, nothing answered), requests that need it answer 503 with
// Retry-After once their deadline passes instead of hanging for as long
// as the client waits; liveness stays up, the outage is logged once, and
// the server serves again as soon as PostgreSQL answers.
func TestPostgresUnreachable(t *testing.T) {
	pg, err := pgtest.StartServer(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	url, err := pg.NewDatabase("unreachable")
	if err != nil {
		t.Fatal(err)
	}
	host := url[strings.Index(url, "@")+1 : strings.Index(url, "/unreachable")]
	bh := newBlackhole(t, host)
	s := start(t, "LEVQOR_DATABASE_URL="+strings.Replace(url, host, bh.addr(), 1))
	expect(t, s.do("POST", "/api/auth/register", "", creds("pg@example.com", "partitioned db")), 201, "register")
	access, _ := login(t, s, "pg@example.com", "partitioned db")
	expect(t, s.do("GET", "/api/me", access, ""), 200, "me")

	bh.frozen.Store(true)
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for _, tc := range []struct {
		method, path, body string
		status             int
		within             time.Duration
	}{
		{"GET", "/api/me", "", 503, 8 * time.Second},
		{"POST", "/api/auth/login", creds("pg@example.com", "partitioned db"), 503, 8 * time.Second},
		{"POST", "/api/auth/register", creds("new@example.com", "partitioned db"), 503, 8 * time.Second},
		{"GET", "/readyz", "", 503, 4 * time.Second},
		{"GET", "/healthz", "", 200, time.Second},
	} {
		for range 3 {
			wg.Go(func() {
				req, _ := http.NewRequest(tc.method, s.url+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+access)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				res, err := client.Do(req)
				d := time.Since(t0)
				if err != nil {
					t.Errorf("%s %s with PostgreSQL unreachable: %v after %v", tc.method, tc.path, err, d)
					return
				}
				defer res.Body.Close()
				if res.StatusCode != tc.status || d > tc.within {
					t.Errorf("%s %s with PostgreSQL unreachable: %d after %v; want %d within %v", tc.method, tc.path, res.StatusCode, d, tc.status, tc.within)
				}
				if tc.status == 503 && tc.path != "/readyz" && res.Header.Get("Retry-After") == "" {
					b, _ := io.ReadAll(res.Body)
					t.Errorf("%s %s: 503 without Retry-After: %s", tc.method, tc.path, b)
				}
			})
		}
	}
	wg.Wait()

	bh.frozen.Store(false)
	waitStatus(t, s, access, 200, 10*time.Second)
	login(t, s, "pg@example.com", "partitioned db")
	s.stop()
	if n := strings.Count(s.logs.String(), "login: look up account: store unavailable"); n != 1 {
		t.Errorf("three failed logins logged the outage %d times; want once a minute", n)
	}
}
