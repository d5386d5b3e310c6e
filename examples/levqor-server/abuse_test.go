package main_test

// Tests of the server against abusive clients: each reproduces a way a
// single client could exhaust memory, connections, logs or budgets, or
// slip past an authentication rule, on the real binary over loopback.

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/sqldialect"
)

// procStatus reads a field (in kB) of /proc/<pid>/status, e.g. VmHWM, the
// peak resident set size.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("%s not in /proc/%d/status", field, pid)
	return 0
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// rawRequest sends method+path on a new connection and returns the status.
func rawRequest(t *testing.T, addr, method, path string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, path)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestMetricLabelsClosed: made-up methods and paths never become label
// values; /metrics stays small.
func TestMetricLabelsClosed(t *testing.T) {
	s := start(t)
	addr := strings.TrimPrefix(s.url, "http://")
	for i := range 200 {
		method := fmt.Sprintf("X%d%s", i, strings.Repeat("Q", 1000))
		rawRequest(t, addr, method, fmt.Sprintf("/made-up/%d", i))
		rawRequest(t, addr, "GET", fmt.Sprintf("/api/made-up-%d", i))
	}
	body := s.do("GET", "/metrics", "", "").body
	if strings.Contains(body, "QQQQ") || strings.Contains(body, "made-up") {
		t.Fatalf("client-chosen strings became metric labels:\n%s", grepLines(body, "QQQQ")[:min(500, len(grepLines(body, "QQQQ")))])
	}
	if !strings.Contains(body, `method="other"`) {
		t.Fatalf("unknown methods not counted as other:\n%s", grepLines(body, "levqor_http_requests_total"))
	}
	if len(body) > 200<<10 {
		t.Fatalf("/metrics is %d bytes after 400 junk requests", len(body))
	}
}

// TestPasswordHashingBounded: 300 concurrent logins hash at most
// LEVQOR_HASH_CONCURRENCY passwords at once; the peak RSS stays under
// 400 MB, and each login gets 401 or, after queueing, 503 + Retry-After.
// Login refuses over-long passwords before hashing, as register does.
func TestPasswordHashingBounded(t *testing.T) {
	s := start(t, "LEVQOR_HASH_CONCURRENCY=2")
	long := strings.Repeat("p", 16<<10-100)
	r := s.do("POST", "/api/auth/login", "", creds("a@example.com", long))
	expect(t, r, 400, "login with a 16 KB password")
	if r.body != s.do("POST", "/api/auth/register", "", creds("a@example.com", long)).body {
		t.Fatal("login and register refuse long passwords differently")
	}
	const n = 300
	codes := make([]int, n)
	retry := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, _ := doRaw(t, s.url, "POST", "/api/auth/login", creds(fmt.Sprintf("x%d@example.com", i), "wrong password"))
			codes[i], retry[i] = res.StatusCode, res.Header.Get("Retry-After")
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, c := range codes {
		count[c]++
		if c == 503 && retry[i] == "" {
			t.Fatal("503 without Retry-After")
		}
		if c != 401 && c != 503 {
			t.Fatalf("login %d: status %d", i, c)
		}
	}
	peak := procStatus(t, s.cmd.Process.Pid, "VmHWM")
	t.Logf("300 concurrent logins, 2 hash slots: %v; peak RSS %d MB", count, peak>>10)
	if peak > 400<<10 {
		t.Fatalf("peak RSS %d MB, want < 400 MB", peak>>10)
	}
}

// doRaw is an HTTP request without test-failing helpers, for goroutines.
func doRaw(t *testing.T, base, method, path, body string) (*http.Response, string) {
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return &http.Response{StatusCode: -1, Header: http.Header{}}, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestConnectionCap: a client hoarding idle keep-alive and silent
// connections cannot exhaust descriptors or lock others out: the server
// holds at most LEVQOR_MAX_CONNS and evicts the longest-quiet one.
func TestConnectionCap(t *testing.T) {
	s := start(t, "LEVQOR_MAX_CONNS=32")
	addr := strings.TrimPrefix(s.url, "http://")
	pid := s.cmd.Process.Pid
	before := openFDs(t, pid)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// 150 keep-alive connections left idle after one request each, and 150
	// that never send anything.
	for i := range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	time.Sleep(time.Second)
	fds := openFDs(t, pid)
	t.Logf("descriptors: %d before, %d with 300 hoarded connections (cap 32)", before, fds)
	if fds > before+32+8 {
		t.Fatalf("%d descriptors open with LEVQOR_MAX_CONNS=32 (started with %d)", fds, before)
	}
	start := time.Now()
	if code := rawRequest(t, addr, "GET", "/healthz"); code != 200 {
		t.Fatalf("real request: %d", code)
	}
	t.Logf("a new client was served %v after the hoarding began", time.Since(start).Round(time.Millisecond))
}

// TestSlowBodiesDoNotLockOthersOut: one client (127.0.0.2) takes every
// connection slot with requests whose bodies it sends a byte at a time;
// another client (127.0.0.1) is still served, as the heaviest client's
// oldest connection makes room. Before, every slot stayed busy until the
// server's read timeout (30 s): /healthz answered after 28 s.
func TestSlowBodiesDoNotLockOthersOut(t *testing.T) {
	s := start(t, "LEVQOR_MAX_CONNS=32")
	addr := strings.TrimPrefix(s.url, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var conns []net.Conn
	for range 32 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprint(c, "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, c := range conns {
					_, _ = c.Write([]byte(" "))
				}
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(time.Second) // every slot busy reading a body
	client := http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		res, err := client.Get(s.url + "/healthz")
		if err != nil {
			t.Fatalf("request %d from another client while one sends slow bodies: %v", i, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
}

// TestRateLimitKeyCap: a flood of client addresses (through a trusted
// proxy) does not grow the limiter past LEVQOR_RATE_LIMIT_KEYS.
func TestRateLimitKeyCap(t *testing.T) {
	s := start(t, "LEVQOR_TRUSTED_PROXIES=127.0.0.1/32", "LEVQOR_RATE_LIMIT_KEYS=64")
	for i := range 1000 {
		h := http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.%d.%d", i/256, i%256)}}
		req, _ := http.NewRequest("GET", s.url+"/api/me", nil)
		req.Header = h
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := metric(t, s, "levqor_ratelimit_memory_keys"); n > 64 || n < 1 {
		t.Fatalf("limiter holds %v keys with LEVQOR_RATE_LIMIT_KEYS=64", n)
	}
}

// TestAuthLimitPerIPWhateverToken: throwaway accounts' tokens do not give
// one IP more login/register/refresh attempts.
func TestAuthLimitPerIPWhateverToken(t *testing.T) {
	s := start(t, "LEVQOR_AUTH_RATE_LIMIT=6/m")
	expect(t, s.do("POST", "/api/auth/register", "", creds("one@example.com", "throwaway 1")), 201, "register")
	tok, _ := login(t, s, "one@example.com", "throwaway 1")
	// 2 of 6 used. Four more, each with the bearer token, then refusal.
	for i := range 6 {
		r := s.do("POST", "/api/auth/login", tok, creds("one@example.com", "wrong password"))
		if i < 4 && r.status != 401 {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
		if i >= 4 && r.status != 429 {
			t.Fatalf("attempt %d with a bearer token: %d, want 429 (auth budget is per IP)", i, r.status)
		}
	}
	if r := s.do("GET", "/api/me", tok, ""); r.status != 200 {
		t.Fatalf("the API budget is separate: %d", r.status)
	}
}

// TestLoginThrottlePerAccount: 10 failures for one account within 15
// minutes lock it (429 + Retry-After), for existing and unknown emails
// alike; a success before that resets the count.
func TestLoginThrottlePerAccount(t *testing.T) {
	s := start(t)
	expect(t, s.do("POST", "/api/auth/register", "", creds("victim@example.com", "right password")), 201, "register")
	for range 9 {
		expect(t, s.do("POST", "/api/auth/login", "", creds("victim@example.com", "wrong password")), 401, "failure")
	}
	login(t, s, "victim@example.com", "right password") // resets
	for range 10 {
		expect(t, s.do("POST", "/api/auth/login", "", creds("victim@example.com", "wrong password")), 401, "failure after reset")
	}
	locked := s.do("POST", "/api/auth/login", "", creds("victim@example.com", "right password"))
	expect(t, locked, 429, "11th attempt, even with the right password")
	if ra, _ := strconv.Atoi(locked.header.Get("Retry-After")); ra < 800 || ra > 900 {
		t.Fatalf("Retry-After %q, want about 15 minutes", locked.header.Get("Retry-After"))
	}
	for range 10 {
		expect(t, s.do("POST", "/api/auth/login", "", creds("nobody@example.com", "wrong password")), 401, "unknown account")
	}
	unknown := s.do("POST", "/api/auth/login", "", creds("nobody@example.com", "wrong password"))
	expect(t, unknown, 429, "unknown account locked the same way")
	if unknown.body != locked.body {
		t.Fatalf("locked answers differ, revealing which accounts exist: %q vs %q", unknown.body, locked.body)
	}
	// Another account is unaffected.
	expect(t, s.do("POST", "/api/auth/register", "", creds("other@example.com", "other password")), 201, "register other")
	login(t, s, "other@example.com", "other password")
}

// TestSessionsPerAccountBounded: an account keeps at most
// LEVQOR_MAX_SESSIONS usable logins; a login beyond them signs out the
// oldest, whose tokens then fail, and its session row goes. Before, every
// login added a session for good (until its refresh lifetime ended): 1,200
// logins of one account left 1,200 sessions, and erasure, which revokes
// each, took 0.2 ms per session, past its 60 s budget at about 300,000.
func TestSessionsPerAccountBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"LEVQOR_DATABASE_URL=" + pgtest.NewDatabase(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, append(tc.env(t), "LEVQOR_MAX_SESSIONS=3")...)
			expect(t, s.do("POST", "/api/auth/register", "", creds("devices@example.com", "many devices")), 201, "register")
			var access, refresh []string
			for range 5 {
				a, r := login(t, s, "devices@example.com", "many devices")
				access, refresh = append(access, a), append(refresh, r)
			}
			for i := range 5 {
				want := 200
				if i < 2 {
					want = 401 // the two oldest logins were signed out
				}
				expect(t, s.do("GET", "/api/me", access[i], ""), want, fmt.Sprintf("/api/me with login %d's token", i+1))
				expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh[i])), want, fmt.Sprintf("refresh of login %d", i+1))
			}
			var summary struct{ Records map[string]int }
			r := s.do("GET", "/api/user/export/summary", access[4], "")
			if err := json.Unmarshal([]byte(r.body), &summary); r.status != 200 || err != nil || summary.Records["sessions"] != 3 {
				t.Fatalf("export summary: %d %s; want 3 sessions", r.status, r.body)
			}
		})
	}
}

// TestLoginThrottleConcurrent: guesses for one account sent all at once
// (from many addresses, as a botnet would) check at most loginFailures
// passwords; the rest get 429. Before, each checked the throttle before
// any had failed, and a burst of 200 checked 143 passwords. With Redis,
// or PostgreSQL alone, the replicas share the count: guesses spread over
// two replicas check the same ten in total.
func TestLoginThrottleConcurrent(t *testing.T) {
	rs := redistest.Start(t)
	redisEnv := []string{"LEVQOR_REDIS_URL=" + rs.URL(), "LEVQOR_HASH_CONCURRENCY=4"}
	for _, tc := range []struct {
		name     string
		replicas func(t *testing.T) []*server
	}{
		{"memory", func(t *testing.T) []*server { return []*server{start(t, "LEVQOR_HASH_CONCURRENCY=4")} }},
		{"redis, two replicas", func(t *testing.T) []*server { return []*server{start(t, redisEnv...), start(t, redisEnv...)} }},
		// Replicas sharing PostgreSQL alone: the throttle lives there (each
		// replica's memory before: twice the guesses).
		{"postgres, two replicas", func(t *testing.T) []*server {
			env := []string{"LEVQOR_DATABASE_URL=" + pgtest.NewDatabase(t), "LEVQOR_HASH_CONCURRENCY=4",
				"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes"}
			return []*server{start(t, env...), start(t, env...)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.replicas(t)
			email := "burst-" + strconv.Itoa(len(r)) + "@example.com"
			expect(t, r[0].do("POST", "/api/auth/register", "", creds(email, "right password")), 201, "register")
			const n = 80
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					res, _ := doRaw(t, r[i%len(r)].url, "POST", "/api/auth/login", creds(email, fmt.Sprintf("wrong guess %d", i)))
					codes[i] = res.StatusCode
				})
			}
			wg.Wait()
			count := map[int]int{}
			for _, c := range codes {
				count[c]++
			}
			if count[401] != 10 || count[429] != n-10 {
				t.Fatalf("%d guesses at once: %v; want 10 checked (401) and %d refused (429)", n, count, n-10)
			}
			for _, s := range r {
				expect(t, s.do("POST", "/api/auth/login", "", creds(email, "right password")), 429, "the right password after the burst")
			}
		})
	}
}

// TestDeleteAccountRace: logins racing with DELETE /api/user never yield
// a working session after the 204, and no row of the user reappears.
func TestDeleteAccountRace(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		data := t.TempDir()
		s := start(t, "LEVQOR_DATA_DIR="+data, "LEVQOR_HASH_CONCURRENCY=4")
		deleteRace(t, s, func() *sql.DB { return openDB(t, data) }, func(q string) string { return q })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		s := start(t, "LEVQOR_DATABASE_URL="+url, "LEVQOR_HASH_CONCURRENCY=4")
		deleteRace(t, s, func() *sql.DB {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}, sqldialect.Postgres.Rebind)
	})
}

func deleteRace(t *testing.T, s *server, openDB func() *sql.DB, q func(string) string) {
	for trial := range 5 {
		email := fmt.Sprintf("race%d@example.com", trial)
		expect(t, s.do("POST", "/api/auth/register", "", creds(email, "race condition")), 201, "register")
		access, _ := login(t, s, email, "race condition")
		var id string
		db := openDB()
		if err := db.QueryRow(q(`SELECT id FROM users WHERE email = ?`), email).Scan(&id); err != nil {
			t.Fatal(err)
		}
		type got struct{ access, refresh string }
		var mu sync.Mutex
		var issued []got
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				res, body := doRaw(t, s.url, "POST", "/api/auth/login", creds(email, "race condition"))
				if res.StatusCode == 200 {
					var m struct {
						AccessToken  string `json:"access_token"`
						RefreshToken string `json:"refresh_token"`
					}
					_ = json.Unmarshal([]byte(body), &m)
					mu.Lock()
					issued = append(issued, got{m.AccessToken, m.RefreshToken})
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(20+trial*15) * time.Millisecond)
		expect(t, s.do("DELETE", "/api/user", access, ""), 204, "delete")
		wg.Wait()
		for _, g := range issued {
			if r := s.do("GET", "/api/me", g.access, ""); r.status != 401 {
				t.Fatalf("trial %d: a token from a racing login works after the 204: me %d", trial, r.status)
			}
			if r := s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, g.refresh)); r.status != 401 {
				t.Fatalf("trial %d: a refresh token from a racing login refreshes after the 204: %d", trial, r.status)
			}
		}
		time.Sleep(100 * time.Millisecond)
		for _, table := range []string{"users WHERE id = ?", "sessions WHERE user_id = ?", "audit_log WHERE user_id = ?"} {
			var n int
			if err := db.QueryRow(q(`SELECT COUNT(*) FROM `+table), id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("trial %d: %d rows in %s after erasure", trial, n, table)
			}
		}
		db.Close()
		t.Logf("trial %d: %d racing logins obtained tokens, all refused after the 204", trial, len(issued))
	}
}

func openDB(t *testing.T, data string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "levqor.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestLogoutWithOthersRefreshChangesNothing: the 403 revokes nothing.
func TestLogoutWithOthersRefreshChangesNothing(t *testing.T) {
	s := start(t)
	expect(t, s.do("POST", "/api/auth/register", "", creds("a@example.com", "password a")), 201, "register a")
	expect(t, s.do("POST", "/api/auth/register", "", creds("b@example.com", "password b")), 201, "register b")
	aAccess, aRefresh := login(t, s, "a@example.com", "password a")
	_, bRefresh := login(t, s, "b@example.com", "password b")
	expect(t, s.do("POST", "/api/auth/logout", aAccess, fmt.Sprintf(`{"refresh_token":%q}`, bRefresh)), 403, "logout with b's refresh token")
	expect(t, s.do("GET", "/api/me", aAccess, ""), 200, "a's access token after the refused logout")
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, aRefresh)), 200, "a's refresh token after the refused logout")
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, bRefresh)), 200, "b's refresh token untouched")
}

// TestRegisterUserAndAuditAtomic: registrations killed mid-flight never
// leave a user without its audit row.
func TestRegisterUserAndAuditAtomic(t *testing.T) {
	data := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+data, "LEVQOR_HASH_CONCURRENCY=16")
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", s.url+"/api/auth/register", strings.NewReader(creds(fmt.Sprintf("k%d@example.com", i), "kill me now")))
			req.Header.Set("Content-Type", "application/json")
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	_ = s.cmd.Process.Kill()
	wg.Wait()
	db := openDB(t, data)
	defer db.Close()
	var users, orphans int
	if err := db.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.user_id = u.id AND a.action = 'register')`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d users committed before SIGKILL, %d without audit row", users, orphans)
	if orphans != 0 {
		t.Fatalf("%d users without their register audit row", orphans)
	}
}

// TestUnicodeAccounts: one person, one account, whatever the encoding.
func TestUnicodeAccounts(t *testing.T) {
	s := start(t)
	expect(t, s.do("POST", "/api/auth/register", "", creds("Jos\u00e9@B\u00fccher.example", "eight chars")), 201, "register")
	for _, alias := range []string{
		"jose\u0301@bu\u0308cher.example",  // NFD
		"JOS\u00c9@xn--bcher-kva.example",  // A-label, upper case
		"jos\u00e9@B\u00dcCHER.EXAMPLE",    // upper-case domain
		" jos\u00e9@b\u00fccher.example  ", // surrounding space
	} {
		expect(t, s.do("POST", "/api/auth/register", "", creds(alias, "eight chars")), 409, "alias "+alias)
	}
	for _, bad := range []string{"jos\u200b\u00e9@b\u00fccher.example", "a\u202e@example.com", "a\x00b@example.com", "a b@example.com", "\"quoted\"@example.com"} {
		expect(t, s.do("POST", "/api/auth/register", "", creds(bad, "eight chars")), 400, fmt.Sprintf("address %q", bad))
	}
	expect(t, s.do("POST", "/api/auth/register", "", creds("emoji@example.com", "😀😀")), 400, "2-character password")
	expect(t, s.do("POST", "/api/auth/register", "", creds("emoji@example.com", "😀😀😀😀😀😀😀😀")), 201, "8-character password")
	login(t, s, "JOSE\u0301@xn--bcher-kva.example", "eight chars")
	// The password too matches however its accent was typed.
	expect(t, s.do("POST", "/api/auth/register", "", creds("accent@example.com", "caf\u00e9 au lait")), 201, "register, composed password")
	login(t, s, "accent@example.com", "cafe\u0301 au lait")
}

// TestCSPReportFlood: one client posting reports is limited, and a
// repeated violation is logged once.
func TestCSPReportFlood(t *testing.T) {
	s := start(t)
	report := `{"csp-report":{"document-uri":"https://levqor.example/","blocked-uri":"inline","effective-directive":"script-src-elem"}}`
	codes := map[int]int{}
	for range 200 {
		h := http.Header{"Content-Type": {"application/csp-report"}}
		req, _ := http.NewRequest("POST", s.url+"/csp-report", strings.NewReader(report))
		req.Header = h
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		codes[res.StatusCode]++
	}
	if codes[204] == 0 || codes[429] == 0 || codes[204] > 30 {
		t.Fatalf("report answers %v: want at most 30 accepted, the rest 429", codes)
	}
	if n := strings.Count(s.logs.String(), "csp violation"); n != 1 {
		t.Fatalf("the same violation was logged %d times", n)
	}
	body := s.do("GET", "/metrics", "", "").body
	for _, want := range []string{`levqor_csp_reports_total{outcome="logged"} 1`, `levqor_csp_reports_total{outcome="limited"}`, `levqor_csp_reports_total{outcome="repeated"}`} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s:\n%s", want, grepLines(body, "csp"))
		}
	}
}

// TestPublicURL: absolute URLs come from LEVQOR_PUBLIC_URL, never from the
// request's Host or an untrusted X-Forwarded-Proto.
func TestPublicURL(t *testing.T) {
	s := start(t, "LEVQOR_PUBLIC_URL=https://levqor.example/")
	req, _ := http.NewRequest("GET", s.url+"/sitemap.xml", nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Proto", "gopher")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "<loc>https://levqor.example/</loc>") || strings.Contains(string(b), "evil") {
		t.Fatalf("sitemap:\n%s", b)
	}
	out, code := cliEnv(t, t.TempDir(), []string{"LEVQOR_PUBLIC_URL=levqor.example"}, "doctor")
	if code != 2 || !strings.Contains(out, "LEVQOR_PUBLIC_URL") {
		t.Fatalf("bad public URL: exit %d\n%s", code, out)
	}
}

// TestSLOIgnoresSlowUploads: clients that upload slowly do not burn the
// API's error budget; only API routes count.
func TestSLOIgnoresSlowUploads(t *testing.T) {
	s := start(t, "SLO_LATENCY_THRESHOLD=0.2")
	addr := strings.TrimPrefix(s.url, "http://")
	slowPost := func(path, ctype, body string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, ctype, len(body))
		for i := 0; i < len(body); i += len(body)/4 + 1 {
			time.Sleep(100 * time.Millisecond)
			_, _ = io.WriteString(c, body[i:min(len(body), i+len(body)/4+1)])
		}
		_, _ = io.ReadAll(c)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			slowPost("/csp-report", "application/csp-report", `{"csp-report":{"document-uri":"https://x/","effective-directive":"img-src"}}`)
			slowPost("/api/auth/refresh", "application/json", fmt.Sprintf(`{"refresh_token":"not-a-token-%d"}`, i))
		})
	}
	wg.Wait()
	if n := metric(t, s, "levqor_slo_events"); n != 40 {
		t.Fatalf("SLO counted %v requests; want the 40 API requests only", n)
	}
	if b := metric(t, s, "levqor_slo_error_budget_remaining"); b != 1 {
		t.Fatalf("error budget %v after slow uploads; want untouched (1)", b)
	}
	if strings.Contains(s.logs.String(), "msg=alert") {
		t.Fatalf("alert from slow uploads:\n%s", grepLines(s.logs.String(), "msg=alert"))
	}
}

// TestSlowExportsDoNotHoldTheDatabase: an export streams the account's
// data while reading it from the database. A user with a large account
// (here 300,000 security-log rows, 14 MB) who starts exports and reads
// nothing holds the connections they run on; they must not hold every
// one, or every login waits until the write timeout (a minute).
func TestSlowExportsDoNotHoldTheDatabase(t *testing.T) {
	data := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+data, "LEVQOR_DATABASE_MAX_CONNS=4", "LEVQOR_RATE_LIMIT=1000/m")
	expect(t, s.do("POST", "/api/auth/register", "", creds("big@example.com", "a large account")), 201, "register")
	db := openDB(t, data)
	defer db.Close()
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
		INSERT INTO audit_log (user_id, at, action)
		SELECT (SELECT id FROM users WHERE email = 'big@example.com'), '2026-11-26T00:00:00Z', 'login' FROM n`); err != nil {
		t.Fatal(err)
	}
	access, _ := login(t, s, "big@example.com", "a large account")

	// Five exports whose client reads nothing: one streams (and stalls),
	// the others are refused at once.
	refused := 0
	for i := range 5 {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "POST /api/user/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", access)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("export %d not answered (%v): the exports before it hold the database connections", i+1, err)
		}
		if res.StatusCode == 503 {
			if res.Header.Get("Retry-After") == "" {
				t.Error("refused export without Retry-After")
			}
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d of 5 concurrent exports refused; want 4 (one at a time per account)", refused)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t0 := time.Now()
	res, err := client.Post(s.url+"/api/auth/login", "application/json", strings.NewReader(creds("big@example.com", "a large account")))
	if err != nil {
		t.Fatalf("login while exports stall: %v after %v", err, time.Since(t0))
	}
	res.Body.Close()
	if res.StatusCode != 200 || time.Since(t0) > 5*time.Second {
		t.Fatalf("login while exports stall: %d after %v; want 200 at once", res.StatusCode, time.Since(t0))
	}
}

// TestClientCausedLogsBounded: anyone can send forged Stripe webhooks
// and, while a dependency is down, probe /readyz as often as they like;
// neither adds a log line per request (each forgery is still counted).
func TestClientCausedLogsBounded(t *testing.T) {
	s := start(t, "STRIPE_WEBHOOK_SECRET="+webhookSecret, "LEVQOR_REDIS_URL=redis://"+freeAddr(t)+"/0")
	const n = 200
	forged := stripeEvent("evt_forged", "invoice.paid", invoice("in_f", "buyer@example.com", 900000, "cus_buyer", ""))
	for i := range n {
		sig := stripeSignature(forged, time.Now(), "whsec_attacker_secret_123456")
		if i%2 == 1 {
			sig = stripeSignature(forged, time.Now().Add(-time.Hour), webhookSecret)
		}
		if st, _ := postEvent(t, s, forged, sig); st != 400 {
			t.Fatalf("forged webhook %d: status %d, want 400", i, st)
		}
		expect(t, s.do("GET", "/readyz", "", ""), 503, "readyz with Redis down")
	}
	if body := s.do("GET", "/metrics", "", "").body; !strings.Contains(body, fmt.Sprintf(`levqor_stripe_webhook_events_total{outcome="rejected"} %d`, n)) {
		t.Fatalf("webhook metrics:\n%s", grepLines(body, "webhook"))
	}
	s.stop()
	logs := s.logs.String()
	for _, line := range []string{"stripe webhook: rejected", "readiness check failed"} {
		if got := strings.Count(logs, line); got != 1 {
			t.Errorf("%d requests logged %q %d times; want once a minute:\n%s", n, line, got, grepLines(logs, line))
		}
	}
}

// TestReadyzHidesErrors: a failing dependency is named, its error is not.
func TestReadyzHidesErrors(t *testing.T) {
	dead := freeAddr(t)
	s := start(t, "LEVQOR_REDIS_URL=redis://"+dead+"/0")
	r := s.do("GET", "/readyz", "", "")
	expect(t, r, 503, "readyz with Redis down")
	if strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "dial") || strings.Contains(r.body, "refused") || !strings.Contains(r.body, `"redis":"unavailable"`) {
		t.Fatalf("readyz body: %s", r.body)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(s.logs.String(), "readiness check failed") {
		if time.Now().After(deadline) {
			t.Fatal("the detail was not logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpsListener: with LEVQOR_OPS_ADDR, /metrics and the profiler are
// served there only; off loopback they need LEVQOR_OPS_TOKEN.
func TestOpsListener(t *testing.T) {
	ops := freeAddr(t)
	s := start(t, "LEVQOR_OPS_ADDR="+ops)
	expect(t, s.do("GET", "/metrics", "", ""), 404, "public /metrics with an ops listener")
	res, body := testhttpGet(t, "http://"+ops+"/metrics", "")
	if res != 200 || !strings.Contains(body, "levqor_http_requests_total") {
		t.Fatalf("ops /metrics: %d", res)
	}
	if res, body := testhttpGet(t, "http://"+ops+"/debug/pprof/heap?debug=1", ""); res != 200 || !strings.Contains(body, "heap profile") {
		t.Fatalf("ops /debug/pprof/heap: %d", res)
	}
	expect(t, s.do("GET", "/debug/pprof/heap", "", ""), 404, "public profiler")

	_, code := cliEnv(t, t.TempDir(), []string{"LEVQOR_OPS_ADDR=0.0.0.0:0"}, "serve")
	if code != 2 {
		t.Fatalf("non-loopback ops listener without a token: exit %d, want 2", code)
	}
	_, p2, _ := net.SplitHostPort(freeAddr(t))
	start(t, "LEVQOR_OPS_ADDR=0.0.0.0:"+p2, "LEVQOR_OPS_TOKEN=ops-token-0123456789")
	if code, _ := testhttpGet(t, "http://127.0.0.1:"+p2+"/metrics", ""); code != 401 {
		t.Fatalf("ops without token: %d", code)
	}
	if code, _ := testhttpGet(t, "http://127.0.0.1:"+p2+"/debug/pprof/heap", ""); code != 401 {
		t.Fatalf("profiler without token: %d", code)
	}
	if code, _ := testhttpGet(t, "http://127.0.0.1:"+p2+"/metrics", "ops-token-0123456789"); code != 200 {
		t.Fatalf("ops with token: %d", code)
	}
	// A browser opening the dashboard sends the token as a Basic password.
	for pw, want := range map[string]int{"ops-token-0123456789": 200, "wrong-token-0123456": 401} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+p2+"/dashboard", nil)
		req.SetBasicAuth("ops", pw)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want || (want == 401 && !strings.Contains(res.Header.Get("WWW-Authenticate"), "Basic")) {
			t.Fatalf("dashboard with Basic %q: %d %q, want %d", pw, res.StatusCode, res.Header.Get("WWW-Authenticate"), want)
		}
	}
}

func testhttpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestShutdownUnderKeepAliveLoad: SIGTERM under 50 keep-alive connections
// loses no request. A load balancer goroutine polls /readyz and stops new
// connections once it answers 503, as a real one would; clients reopen a
// connection when the server answers "Connection: close".
func TestShutdownUnderKeepAliveLoad(t *testing.T) {
	s := start(t, "LEVQOR_SHUTDOWN_DELAY=2s")
	addr := strings.TrimPrefix(s.url, "http://")
	expect(t, s.do("POST", "/api/auth/register", "", creds("drain@example.com", "keep serving")), 201, "register")
	var out atomic.Bool // the load balancer took the backend out
	go func() {
		for !out.Load() {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(time.Second))
				fmt.Fprint(c, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && res.StatusCode == 503 {
					out.Store(true)
				}
				c.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var sent, answered, lost atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			for {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if c == nil {
					if out.Load() {
						return
					}
					var err error
					if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
						return // refused: nothing was sent
					}
					br = bufio.NewReader(c)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
				if i%10 == 0 {
					body := creds("drain@example.com", "wrong password")
					req = fmt.Sprintf("POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
				if _, err := io.WriteString(c, req); err != nil {
					c.Close()
					c = nil
					continue
				}
				sent.Add(1)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					lost.Add(1)
					c.Close()
					c = nil
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				answered.Add(1)
				if res.Close {
					c.Close()
					c = nil
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit")
	}
	close(stop)
	wg.Wait()
	t.Logf("SIGTERM under 50 keep-alive connections: %d requests sent, %d answered, %d lost", sent.Load(), answered.Load(), lost.Load())
	if lost.Load() != 0 {
		t.Fatalf("%d requests sent on open connections got no response", lost.Load())
	}
	if answered.Load() < 500 {
		t.Fatalf("only %d requests answered: the load did not run", answered.Load())
	}
}

// TestRedisDownFailsFast: with Redis frozen (SIGSTOP) or killed, a token
// check answers 503 within 300 ms at p99, and the breaker closes within
// about a second of Redis returning.
func TestRedisDownFailsFast(t *testing.T) {
	rs := redistest.StartPersistent(t)
	rs.RequireReal("freezes the redis-server process with SIGSTOP")
	s := start(t, "LEVQOR_REDIS_URL="+rs.URL(), "LEVQOR_RATE_LIMIT=100000/m")
	expect(t, s.do("POST", "/api/auth/register", "", creds("fast@example.com", "fail fast please")), 201, "register")
	access, _ := login(t, s, "fast@example.com", "fail fast please")
	// Each phase checks a token this replica has not verified yet: a token
	// it has seen is answered from its revocation cache while nothing can
	// be revoked (Redis holds the revocations), and that is not the path
	// under test.
	measure := func(what, access string) {
		var mu sync.Mutex
		var ds []time.Duration
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					req, _ := http.NewRequest("GET", s.url+"/api/me", nil)
					req.Header.Set("Authorization", "Bearer "+access)
					t0 := time.Now()
					res, err := http.DefaultClient.Do(req)
					d := time.Since(t0)
					if err != nil {
						t.Error(err)
						return
					}
					res.Body.Close()
					if res.StatusCode != 503 {
						t.Errorf("%s: %d, want 503", what, res.StatusCode)
					}
					mu.Lock()
					ds = append(ds, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		p50, p99 := percentile(ds, 0.5), percentile(ds, 0.99)
		t.Logf("Redis %s: token check answered 503 in p50 %v, p99 %v (%d requests)", what, p50.Round(time.Millisecond), p99.Round(time.Millisecond), len(ds))
		if p99 > 300*time.Millisecond {
			t.Fatalf("Redis %s: p99 %v, want <= 300ms", what, p99)
		}
	}
	rs.Freeze()
	measure("frozen", access)
	rs.Thaw()
	waitStatus(t, s, access, 200, 3*time.Second)
	fresh, _ := login(t, s, "fast@example.com", "fail fast please")
	rs.Stop()
	measure("killed", fresh)
	rs.Restart()
	t0 := time.Now()
	waitStatus(t, s, access, 200, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, s, "levqor_ratelimit_fallback_open") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("breaker still open 5s after Redis returned")
		}
		s.do("GET", "/api/me", "", "")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("token checks and shared rate limits back %v after Redis restarted", time.Since(t0).Round(10*time.Millisecond))
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("recovery took %v", d)
	}
}

func waitStatus(t *testing.T, s *server, token string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.do("GET", "/api/me", token, "").status != want {
		if time.Now().After(deadline) {
			t.Fatalf("/api/me did not return %d within %v", want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
