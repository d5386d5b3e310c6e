package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/redistest"
)

func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	body := s.do("GET", "/metrics", "", "").body
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s missing", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestRedisOutage kills redis-server (SIGKILL) under a stream of requests
// and starts it again: rate limiting falls back without a single 5xx,
// token checks fail closed (503, never a revoked token accepted), the
// revocation made before the outage holds after it, and the circuit
// closes by itself.
func TestRedisOutage(t *testing.T) {
	rs := redistest.StartPersistent(t)
	s := start(t, "LEVQOR_REDIS_URL="+rs.URL(), "LEVQOR_RATE_LIMIT=100000/m")
	expect(t, s.do("POST", "/api/auth/register", "", creds("fault@example.com", "fault tolerance")), 201, "register")
	revoked, _ := login(t, s, "fault@example.com", "fault tolerance")
	expect(t, s.do("POST", "/api/auth/logout", revoked, ""), 204, "logout before the outage")

	// A stream of anonymous API requests: rate-limited, no token to verify.
	var fives, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := http.Get(s.url + "/api/me")
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				total.Add(1)
				if res.StatusCode >= 500 {
					fives.Add(1)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	rs.Stop() // SIGKILL
	time.Sleep(1500 * time.Millisecond)
	if open := metric(t, s, "levqor_ratelimit_fallback_open"); open != 1 {
		t.Fatalf("fallback gauge %v during the outage", open)
	}
	r := s.do("GET", "/api/me", revoked, "")
	if r.status != 503 {
		t.Fatalf("revoked token while Redis is down: %d (must fail closed, 503)", r.status)
	}
	// Logins cannot ask the shared throttle: 503, logged once a minute,
	// not once per login.
	for range 20 {
		expect(t, s.do("POST", "/api/auth/login", "", creds("fault@example.com", "fault tolerance")), 503, "login while Redis is down")
	}
	if n := strings.Count(s.logs.String(), `msg="login throttle"`); n != 1 {
		t.Fatalf("20 logins during the outage logged the throttle's failure %d times; want once a minute", n)
	}
	rs.Restart()
	// The breaker probes again after its 5s cool-down.
	deadline := time.Now().Add(20 * time.Second)
	for metric(t, s, "levqor_ratelimit_fallback_open") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("circuit did not close after Redis came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if fives.Load() != 0 {
		t.Fatalf("%d of %d anonymous requests failed with 5xx during the outage", fives.Load(), total.Load())
	}
	if total.Load() < 50 {
		t.Fatalf("only %d requests in the stream", total.Load())
	}
	expect(t, s.do("GET", "/api/me", revoked, ""), 401, "revocation after Redis returned")
	fresh, _ := login(t, s, "fault@example.com", "fault tolerance")
	expect(t, s.do("GET", "/api/me", fresh, ""), 200, "new login after recovery")
}

// TestConcurrentRegistrations: many writers on one SQLite file; busy
// waits are bounded retries, and no registration is lost. On a loaded
// machine the password-hashing gate may shed some registrations (503,
// Retry-After, nothing written); each is retried as the answer says, as
// a client would.
func TestConcurrentRegistrations(t *testing.T) {
	s := start(t, "LEVQOR_RATE_LIMIT=100000/m")
	const n, attempts = 40, 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for range attempts {
				r := s.do("POST", "/api/auth/register", "", creds(fmt.Sprintf("u%d@example.com", i), "concurrency"))
				codes[i] = r.status
				if r.status != 503 || r.header.Get("Retry-After") != "1" || !strings.Contains(r.body, "too many logins at once") {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Fatalf("registration %d: %d", i, c)
		}
	}
	for i := range n {
		expect(t, s.do("POST", "/api/auth/login", "", creds(fmt.Sprintf("u%d@example.com", i), "concurrency")), 200, "login after concurrent registration")
	}
}

// TestSlowFailingTelegram: alerts go to a Telegram fake that is slow and
// then refuses; requests that raise alerts are not slowed, and the
// failures show in the metrics.
func TestSlowFailingTelegram(t *testing.T) {
	var calls atomic.Int64
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(700 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
	}))
	defer tg.Close()
	s := start(t, "TELEGRAM_BOT_TOKEN=123:fake-token-for-tests", "TELEGRAM_CHAT_ID=-100", "LEVQOR_TELEGRAM_API="+tg.URL)
	expect(t, s.do("POST", "/api/auth/register", "", creds("tg@example.com", "telegram down")), 201, "register")
	// Reuse a retired refresh token after the grace period: an alert.
	_, refresh := login(t, s, "tg@example.com", "telegram down")
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 200, "rotate")
	time.Sleep(5100 * time.Millisecond)
	for range 3 {
		start := time.Now()
		expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 401, "reuse")
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("a request that raised an alert took %v: alerting is not asynchronous", d)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for metric(t, s, "levqor_alerts_failed_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("failed delivery not in metrics (telegram calls: %d)", calls.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), "fake-token-for-tests") {
		t.Fatal("bot token in the server log")
	}
	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("panic in log:\n%s", s.logs.String())
	}
}

// TestFailingCostSources: the costs and spend commands against Stripe and
// OpenAI fakes that fail report the failure (exit 2, unknown), never a
// made-up zero, and never panic.
func TestFailingCostSources(t *testing.T) {
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		fmt.Fprint(w, `{"error":{"type":"api_error","message":"An unknown error occurred"}}`)
	}))
	defer fail.Close()
	data := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+data)
	_ = s
	env := []string{"STRIPE_SECRET_KEY=sk_test_fake", "LEVQOR_STRIPE_API=" + fail.URL, "OPENAI_ADMIN_KEY=sk-admin-fake", "LEVQOR_OPENAI_API=" + fail.URL}
	for _, args := range [][]string{{"spend"}, {"costs"}} {
		out, code := cliEnv(t, data, env, args...)
		if code != 2 || !strings.Contains(out, "FAILED") && !strings.Contains(out, "failed") || strings.Contains(out, "panic") {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		if strings.Contains(out, "sk-admin-fake") {
			t.Fatalf("%v leaked the admin key:\n%s", args, out)
		}
	}
}
