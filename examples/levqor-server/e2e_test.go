package main_test

import (
	"github.com/levqor/levqor/internal/pgtest"

	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/testhttp"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "levqor-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "levqor-server")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running levqor-server process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the binary with a temp data dir (unless env sets one) and
// waits for /healthz.
func start(t *testing.T, env ...string) *server {
	t.Helper()
	s := launch(t, env...)
	s.waitHealthy()
	return s
}

// launch starts the binary without waiting for it: several launched at
// once start concurrently, as replicas do.
func launch(t *testing.T, env ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{t: t, url: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, "serve")
	// Tests log in far more often than the auth limit allows a person to,
	// and most do not test the shutdown delay; tests of those set their own.
	s.cmd.Env = append(os.Environ(), "LEVQOR_ADDR="+addr, "LEVQOR_DATA_DIR="+t.TempDir(),
		"LEVQOR_AUTH_RATE_LIMIT=100000/m", "LEVQOR_SHUTDOWN_DELAY=0")
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

// waitHealthy waits for /healthz to answer 200.
func (s *server) waitHealthy() {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-s.done:
			s.done <- err // for the cleanup
			t.Fatalf("server exited: %v\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %q", r.status, r.body)
	}
	return m
}

// stop sends SIGTERM and waits for the server to exit: then every line it
// logged is in s.logs.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			s.t.Fatalf("exit: %v\n%s", err, s.logs.String())
		}
	case <-time.After(20 * time.Second):
		s.t.Fatal("did not exit after SIGTERM")
	}
}

func (s *server) do(method, path, token, body string) response {
	s.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	res, b := testhttp.Do(s.t, method, s.url+path, body, h)
	return response{res.StatusCode, res.Header, b}
}

func expect(t *testing.T, r response, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
}

func creds(email, pw string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)
}

func login(t *testing.T, s *server, email, pw string) (access, refresh string) {
	t.Helper()
	r := s.do("POST", "/api/auth/login", "", creds(email, pw))
	expect(t, r, 200, "login")
	m := r.json(t)
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
		t.Fatalf("login body %v", m)
	}
	return m["access_token"].(string), m["refresh_token"].(string)
}

func TestEndToEnd(t *testing.T) {
	endToEnd(t, start(t, "LEVQOR_RATE_LIMIT=1000/m"))
}

// TestEndToEndPostgres runs the whole API with all server state in a real
// PostgreSQL (LEVQOR_DATABASE_URL).
func TestEndToEndPostgres(t *testing.T) {
	endToEnd(t, start(t, "LEVQOR_RATE_LIMIT=1000/m", "LEVQOR_DATABASE_URL="+pgtest.NewDatabase(t)))
}

// TestEndToEndOneConnection: the whole API with a database pool of one
// connection (LEVQOR_DATABASE_MAX_CONNS=1, the least the setting allows),
// on PostgreSQL and SQLite. Before, on PostgreSQL the server never became
// healthy: the migrations waited for a second connection while the first
// held their advisory lock.
func TestEndToEndOneConnection(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		endToEnd(t, start(t, "LEVQOR_RATE_LIMIT=1000/m", "LEVQOR_DATABASE_URL="+pgtest.NewDatabase(t), "LEVQOR_DATABASE_MAX_CONNS=1"))
	})
	t.Run("sqlite", func(t *testing.T) {
		endToEnd(t, start(t, "LEVQOR_RATE_LIMIT=1000/m", "LEVQOR_DATABASE_MAX_CONNS=1"))
	})
}

func endToEnd(t *testing.T, s *server) {

	// Registration.
	expect(t, s.do("POST", "/api/auth/register", "", creds("ada@example.com", "correct horse")), 201, "register")
	expect(t, s.do("POST", "/api/auth/register", "", creds("bob@example.com", "battery staple")), 201, "register bob")
	expect(t, s.do("POST", "/api/auth/register", "", creds("ADA@example.com", "another pw")), 409, "duplicate (case-insensitive)")
	expect(t, s.do("POST", "/api/auth/register", "", creds("not-an-email", "long enough")), 400, "bad email")
	expect(t, s.do("POST", "/api/auth/register", "", creds("c@example.com", "short")), 400, "short password")
	expect(t, s.do("POST", "/api/auth/register", "", `{"email":"c@example.com","password":"long enough","admin":true}`), 400, "unknown field")
	expect(t, s.do("POST", "/api/auth/register", "", `{"email":`), 400, "malformed JSON")
	expect(t, s.do("POST", "/api/auth/register", "", `{"email":"`+strings.Repeat("a", 20000)+`"}`), 413, "oversized body")
	r := s.do("GET", "/api/auth/login", "", "")
	expect(t, r, 405, "wrong method")
	if r.header.Get("Allow") == "" || r.json(t)["error"] == nil {
		t.Fatalf("405 without Allow or JSON error: %v %s", r.header, r.body)
	}

	// Login: unknown email and wrong password look the same.
	wrong := s.do("POST", "/api/auth/login", "", creds("ada@example.com", "wrong password"))
	unknown := s.do("POST", "/api/auth/login", "", creds("nobody@example.com", "wrong password"))
	expect(t, wrong, 401, "wrong password")
	expect(t, unknown, 401, "unknown email")
	if wrong.body != unknown.body {
		t.Fatalf("different answers leak which emails exist: %q vs %q", wrong.body, unknown.body)
	}
	access, refresh := login(t, s, "ada@example.com", "correct horse")

	// Me.
	r = s.do("GET", "/api/me", access, "")
	expect(t, r, 200, "me")
	if r.json(t)["email"] != "ada@example.com" || r.json(t)["created_at"] == nil {
		t.Fatalf("me %s", r.body)
	}
	r = s.do("GET", "/api/me", "", "")
	expect(t, r, 401, "me without token")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	expect(t, s.do("GET", "/api/me", "garbage", ""), 401, "me with a bad token")

	// Rate-limit headers on every /api/ response.
	if r.header.Get("RateLimit-Policy") != `"default";q=1000;w=60` || !strings.HasPrefix(r.header.Get("RateLimit"), `"default";r=`) || r.header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("rate-limit headers %v", r.header)
	}
	// API responses carry the REST security headers, not the page's.
	if r.header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" || r.header.Get("X-Content-Type-Options") != "nosniff" ||
		r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Cross-Origin-Resource-Policy") != "same-origin" ||
		r.header.Get("Permissions-Policy") != "" || r.header.Get("Referrer-Policy") != "" {
		t.Fatalf("API security headers %v", r.header)
	}
	// Eight handler headers at most on /api/me: net/http's header map (and
	// its copy at WriteHeader) then stays within one map group
	// (bench/README.md). Date and Content-Length are net/http's own.
	if me := s.do("GET", "/api/me", access, ""); me.status != 200 || len(me.header)-2 > 8 || me.header.Get("Date") == "" || me.header.Get("Content-Length") == "" {
		t.Fatalf("%d handler headers on GET /api/me: %v", len(me.header)-2, me.header)
	}

	// Refresh rotation and reuse detection.
	r = s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh))
	expect(t, r, 200, "refresh")
	access2, refresh2 := r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)
	expect(t, s.do("GET", "/api/me", access2, ""), 200, "me with the rotated token")
	time.Sleep(5100 * time.Millisecond) // past the 5s grace period
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 401, "reuse of a retired refresh token")
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh2)), 401, "newest refresh token after reuse")
	expect(t, s.do("GET", "/api/me", access2, ""), 401, "access token of the revoked family")

	// Logout revokes the access token and the refresh family.
	access, refresh = login(t, s, "ada@example.com", "correct horse")
	expect(t, s.do("POST", "/api/auth/logout", access, fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 204, "logout")
	expect(t, s.do("GET", "/api/me", access, ""), 401, "me after logout")
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 401, "refresh after logout")

	// Security headers and the CSP nonce on the landing page.
	r = s.do("GET", "/", "", "")
	expect(t, r, 200, "landing page")
	csp := r.header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("no nonce in CSP %q", csp)
	}
	attr := strings.ReplaceAll(m[1], "+", "&#43;")
	if !strings.Contains(r.body, `<script nonce="`+attr+`">`) || !strings.Contains(r.body, "7-day refund") || strings.Count(r.body, "<blockquote>") != 3 {
		t.Fatalf("page does not carry the response's nonce %q or the testimonials:\n%s", m[1], r.body)
	}
	for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy"} {
		if r.header.Get(h) == "" {
			t.Fatalf("missing %s", h)
		}
	}
	if r.header.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS on plain HTTP")
	}
	if r.header.Get("RateLimit") != "" {
		t.Fatal("rate-limit headers outside /api/")
	}

	// DSAR: own data only.
	bobAccess, _ := login(t, s, "bob@example.com", "battery staple")
	access, _ = login(t, s, "ada@example.com", "correct horse")
	r = s.do("POST", "/api/user/export", access, "")
	expect(t, r, 200, "export")
	if !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") || !strings.Contains(r.body, "ada@example.com") || strings.Contains(r.body, "bob@example.com") {
		t.Fatalf("export: %v\n%s", r.header, r.body)
	}
	var doc struct {
		Data    map[string][]map[string]any `json:"data"`
		Summary map[string]int              `json:"summary"`
	}
	_ = json.Unmarshal([]byte(r.body), &doc)
	if doc.Summary["account"] != 1 || doc.Summary["sessions"] < 3 || doc.Summary["security_log"] < 3 {
		t.Fatalf("export summary %v", doc.Summary)
	}
	expect(t, s.do("POST", "/api/user/export", access, `{"email":"bob@example.com"}`), 403, "IDOR: export naming bob")
	expect(t, s.do("POST", "/api/user/export", access, `{"email":"ada@example.com"}`), 200, "export naming oneself")
	expect(t, s.do("POST", "/api/user/export", "", ""), 401, "anonymous export")
	r = s.do("GET", "/api/user/export/summary", bobAccess, "")
	expect(t, r, 200, "summary")
	if !strings.Contains(r.body, `"account":1`) {
		t.Fatalf("summary %s", r.body)
	}

	// Erasure.
	expect(t, s.do("DELETE", "/api/user", access, ""), 204, "delete account")
	expect(t, s.do("GET", "/api/me", access, ""), 401, "me after deletion")
	expect(t, s.do("POST", "/api/auth/login", "", creds("ada@example.com", "correct horse")), 401, "login after deletion")
	expect(t, s.do("GET", "/api/me", bobAccess, ""), 200, "bob unaffected")

	// Operations endpoints.
	expect(t, s.do("GET", "/readyz", "", ""), 200, "readyz")
	r = s.do("GET", "/.well-known/jwks.json", "", "")
	if r.status != 200 || !strings.Contains(r.body, `"kty":"OKP"`) {
		t.Fatalf("jwks %d %s", r.status, r.body)
	}
	r = s.do("GET", "/sitemap.xml", "", "")
	var urlset struct {
		URLs []struct {
			Loc string `xml:"loc"`
		} `xml:"url"`
	}
	if err := xml.Unmarshal([]byte(r.body), &urlset); err != nil || len(urlset.URLs) == 0 || urlset.URLs[0].Loc != "http://localhost:"+s.url[strings.LastIndexByte(s.url, ':')+1:]+"/" {
		t.Fatalf("sitemap %v: %s", err, r.body)
	}
	expect(t, s.do("POST", "/csp-report", "", ""), 415, "csp report without a type")
	r = s.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`levqor_http_requests_total{code="201",method="POST",route="POST /api/auth/register"}`,
		`levqor_http_request_duration_seconds_bucket{route="GET /api/me"`,
		`levqor_ratelimit_decisions_total{decision="allowed"}`,
		"levqor_ratelimit_fallback_open 0", "levqor_alerts_delivered_total",
	} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := start(t, "LEVQOR_RATE_LIMIT=5/m")
	for i := range 5 {
		r := s.do("GET", "/api/me", "", "")
		if r.status != 401 || !strings.HasPrefix(r.header.Get("RateLimit"), fmt.Sprintf(`"default";r=%d;`, 4-i)) {
			t.Fatalf("request %d: %d, RateLimit %q", i, r.status, r.header.Get("RateLimit"))
		}
	}
	r := s.do("GET", "/api/me", "", "")
	expect(t, r, 429, "sixth request")
	if r.header.Get("Retry-After") == "" || r.json(t)["error"] == nil || r.header.Get("RateLimit") != `"default";r=0;t=60` {
		t.Fatalf("429 headers %v body %s", r.header, r.body)
	}
	// Not an /api/ route: not limited.
	expect(t, s.do("GET", "/healthz", "", ""), 200, "healthz while limited")
}

func TestBadConfigurationStopsStartUp(t *testing.T) {
	for _, env := range []string{"LEVQOR_RATE_LIMIT=lots", "DAILY_SPEND_LIMIT=fifty", "SLO_LATENCY_THRESHOLD=-1", "LEVQOR_TRUSTED_PROXIES=10.0.0.0/99", "LEVQOR_JWT_SECRET=short"} {
		cmd := exec.Command(binary, "serve")
		cmd.Env = append(os.Environ(), "LEVQOR_DATA_DIR="+t.TempDir(), "LEVQOR_ADDR="+freeAddr(t), env)
		out, err := cmd.CombinedOutput()
		name := strings.SplitN(env, "=", 2)[0]
		if err == nil || !strings.Contains(string(out), name) {
			t.Fatalf("%s: err %v, output %s", env, err, out)
		}
	}
}

// TestGracefulShutdown sends SIGTERM while a request is in flight (its
// body half sent): the request completes, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	s := start(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := creds("late@example.com", "in flight!")
	fmt.Fprintf(conn, "POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	_, _ = conn.Write([]byte(body[:10]))
	time.Sleep(200 * time.Millisecond) // the handler is now reading the body
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Fatal("new connections still accepted during shutdown")
	}
	_, _ = conn.Write([]byte(body[10:]))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	if res.StatusCode != 201 {
		t.Fatalf("in-flight request: %d", res.StatusCode)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.logs.String())
		}
		s.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(s.logs.String(), "stopped") {
		t.Fatalf("log:\n%s", s.logs.String())
	}
}

// TestReplicasShareRedis runs two servers against one real redis-server:
// they share rate limits and token revocations.
func TestReplicasShareRedis(t *testing.T) {
	rs := redistest.Start(t)
	data := t.TempDir()
	env := []string{"LEVQOR_REDIS_URL=" + rs.URL(), "LEVQOR_DATA_DIR=" + data, "LEVQOR_RATE_LIMIT=8/m"}
	a := start(t, env...)
	b := start(t, env...)

	expect(t, a.do("POST", "/api/auth/register", "", creds("eve@example.com", "shared secret")), 201, "register on A")
	access, _ := login(t, b, "eve@example.com", "shared secret") // login on B
	expect(t, a.do("GET", "/api/me", access, ""), 200, "token from B accepted by A")
	expect(t, a.do("POST", "/api/auth/logout", access, ""), 204, "logout on A")
	expect(t, b.do("GET", "/api/me", access, ""), 401, "token revoked on A refused by B")

	// 8/min per client, shared. Register, login and logout count against
	// the separate auth budget; the refused me on B (a revoked token
	// identifies nobody) is keyed by IP: 1 used, 7 left.
	used := 0
	for _, s := range []*server{a, b, a, b, a, b, a, b} {
		r := s.do("GET", "/api/me", "", "")
		if r.status == 429 {
			break
		}
		used++
	}
	if used != 7 {
		t.Fatalf("%d more anonymous requests allowed across both replicas; the shared budget had 7 left", used)
	}
	r := a.do("GET", "/readyz", "", "")
	if r.status != 200 || !strings.Contains(r.body, `"redis":"ok"`) {
		t.Fatalf("readyz %s", r.body)
	}
}
