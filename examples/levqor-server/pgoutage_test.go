package main_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/tcpproxy"
)

// postgresBehindProxy is the URL of a new database that the server reaches
// through a tcpproxy, for fault tests.
func postgresBehindProxy(t *testing.T) (string, *tcpproxy.Proxy) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// TestPostgresUnreachable: with PostgreSQL partitioned away (connections
// open, nothing answered), requests that need it answer 503 with
// Retry-After once their deadline passes instead of hanging for as long
// as the client waits; liveness stays up, the outage is logged once, and
// the server serves again as soon as PostgreSQL answers.
func TestPostgresUnreachable(t *testing.T) {
	dbURL, proxy := postgresBehindProxy(t)
	s := start(t, "LEVQOR_DATABASE_URL="+dbURL)
	expect(t, s.do("POST", "/api/auth/register", "", creds("pg@example.com", "partitioned db")), 201, "register")
	access, _ := login(t, s, "pg@example.com", "partitioned db")
	expect(t, s.do("GET", "/api/me", access, ""), 200, "me")

	proxy.Freeze()
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

	proxy.Thaw()
	waitStatus(t, s, access, 200, 10*time.Second)
	login(t, s, "pg@example.com", "partitioned db")
	s.stop()
	// The throttle, kept in PostgreSQL, is what each login asks first.
	if n := strings.Count(s.logs.String(), `msg="login throttle"`); n != 1 {
		t.Errorf("three failed logins logged the outage %d times; want once a minute", n)
	}
}

// TestPostgresReconnects: when every connection to PostgreSQL breaks at
// once (a restart or a failover behind the same address), each pooled
// connection would fail the next statement sent on it (8 of 160 requests
// failed so). The token check sends its read again, and the server closes
// its idle connections at the first broken one (tokens.SQLConfig's
// OnConnLost), so the retry opens a new connection: no request fails, and
// the server serves on without a restart.
func TestPostgresReconnects(t *testing.T) {
	dbURL, proxy := postgresBehindProxy(t)
	const conns = 8
	s := start(t, "LEVQOR_DATABASE_URL="+dbURL, "LEVQOR_RATE_LIMIT=100000/m",
		"LEVQOR_DATABASE_MAX_CONNS="+strconv.Itoa(conns))
	expect(t, s.do("POST", "/api/auth/register", "", creds("pg@example.com", "restarted db")), 201, "register")
	access, _ := login(t, s, "pg@example.com", "restarted db")
	burst := func() map[int]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range 16 {
			wg.Go(func() {
				for range 10 {
					r := s.do("GET", "/api/me", access, "")
					if r.status == 503 && r.header.Get("Retry-After") == "" {
						t.Error("503 without Retry-After")
					}
					mu.Lock()
					codes[r.status]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return codes
	}
	if codes := burst(); codes[200] != 160 {
		t.Fatalf("before: %v", codes)
	}
	proxy.Cut()
	codes := burst()
	t.Logf("the burst after every connection broke: %v", codes)
	if codes[200] != 160 {
		t.Fatalf("after every connection broke: %v; want every request answered 200", codes)
	}
	if codes := burst(); codes[200] != 160 {
		t.Fatalf("not recovered: %v", codes)
	}
	login(t, s, "pg@example.com", "restarted db")
}
