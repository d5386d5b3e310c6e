package main_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/testhttp"
	"github.com/levqor/levqor/tokens"
)

// TestReplicas runs three server processes, each with its own data
// directory and port, on one PostgreSQL and one 3-master Redis Cluster,
// sharing only LEVQOR_DATABASE_URL, LEVQOR_REDIS_URL, LEVQOR_JWT_SECRET
// and LEVQOR_DSAR_KEY, as replicas on three machines would.
func TestReplicas(t *testing.T) {
	cluster := redistest.StartCluster(t)
	shared := []string{
		"LEVQOR_DATABASE_URL=" + pgtest.NewDatabase(t),
		"LEVQOR_REDIS_URL=" + cluster.URL(),
		"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes",
		"LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes",
		"LEVQOR_RATE_LIMIT=30/h",
		"LEVQOR_TRUSTED_PROXIES=127.0.0.1/32", // the budget test names its client in X-Forwarded-For
		"LEVQOR_REDIS_CHECK_INTERVAL=200ms",
	}
	var r [3]*server
	for i := range r { // started at once: migrations run under the advisory lock
		r[i] = launch(t, shared...)
	}
	for _, s := range r {
		s.waitHealthy()
	}

	t.Run("register on 1, log in on 2, me on 3", func(t *testing.T) {
		expect(t, r[0].do("POST", "/api/auth/register", "", creds("ann@example.com", "replicated pw")), 201, "register on 1")
		access, _ := login(t, r[1], "ann@example.com", "replicated pw")
		me := r[2].do("GET", "/api/me", access, "")
		expect(t, me, 200, "me on 3")
		if !strings.Contains(me.body, "ann@example.com") {
			t.Fatalf("me on 3: %s", me.body)
		}
		expect(t, r[2].do("POST", "/api/auth/register", "", creds("Ann@Example.com", "another pw")), 409, "same email on 3")

		expect(t, r[2].do("POST", "/api/auth/logout", access, ""), 204, "logout on 3")
		loggedOut := time.Now()
		for _, s := range r[:2] {
			for s.do("GET", "/api/me", access, "").status != 401 {
				if time.Since(loggedOut) > 100*time.Millisecond {
					t.Fatalf("%s still accepts the token 100 ms after logout on replica 3", s.url)
				}
			}
		}
	})

	t.Run("rate limit shared", func(t *testing.T) {
		// 30/h for one client, 20 requests on each replica at once.
		var mu sync.Mutex
		admitted := 0
		var wg sync.WaitGroup
		for _, s := range r {
			wg.Go(func() {
				for range 20 {
					res, _ := testhttp.Do(t, "GET", s.url+"/api/me", "", http.Header{"X-Forwarded-For": {"198.51.100.9"}})
					if res.StatusCode != 429 {
						mu.Lock()
						admitted++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if admitted != 30 {
			t.Fatalf("three replicas admitted %d of 60 requests from one client; the shared budget is 30", admitted)
		}
	})

	t.Run("DSAR across replicas", func(t *testing.T) {
		expect(t, r[0].do("POST", "/api/auth/register", "", creds("dora@example.com", "data subject")), 201, "register on 1")
		res, body := testhttp.Do(t, "POST", r[0].url+"/api/auth/login", creds("dora@example.com", "data subject"),
			http.Header{"Content-Type": {"application/json"}, "User-Agent": {"written-by-replica-1"}})
		if res.StatusCode != 200 {
			t.Fatalf("login on 1: %d %s", res.StatusCode, body)
		}
		access := jsonField(t, body, "access_token")
		export := r[1].do("POST", "/api/user/export", access, "")
		expect(t, export, 200, "export on 2")
		if !strings.Contains(export.body, "written-by-replica-1") || !strings.Contains(export.body, "dora@example.com") {
			t.Fatalf("export on 2 lacks what replica 1 wrote:\n%s", export.body)
		}
		if strings.Contains(export.body, "ann@example.com") {
			t.Fatal("export shows another user's data")
		}

		expect(t, r[0].do("DELETE", "/api/user", access, ""), 204, "erasure on 1")
		expect(t, r[2].do("POST", "/api/auth/login", "", creds("dora@example.com", "data subject")), 401, "login on 3 after erasure")
		expect(t, r[1].do("GET", "/api/me", access, ""), 401, "token on 2 after erasure")
	})

	t.Run("concurrent registrations", func(t *testing.T) {
		const n = 40
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				codes[i] = r[i%3].do("POST", "/api/auth/register", "", creds(fmt.Sprintf("c%d@example.com", i), "concurrent")).status
			})
		}
		wg.Wait()
		for i, c := range codes {
			if c != 201 {
				t.Fatalf("registration %d on replica %d: %d", i, i%3+1, c)
			}
		}
		login(t, r[1], "c0@example.com", "concurrent") // written through 1, read through 2

		for round := range 5 {
			email := fmt.Sprintf("race%d@example.com", round)
			var codes [3]int
			var wg sync.WaitGroup
			for i, s := range r {
				wg.Go(func() { codes[i] = s.do("POST", "/api/auth/register", "", creds(email, "one of three")).status })
			}
			wg.Wait()
			created, conflicts := 0, 0
			for _, c := range codes {
				switch c {
				case 201:
					created++
				case 409:
					conflicts++
				}
			}
			if created != 1 || conflicts != 2 {
				t.Fatalf("%s registered on all three at once: statuses %v, want one 201 and two 409", email, codes)
			}
		}
	})

	t.Run("a Redis master dies and returns empty", func(t *testing.T) {
		replicasLoseRedisMaster(t, r, cluster)
	})
}

// replicasLoseRedisMaster kills one master of the cluster. While the
// cluster is down (every node refuses commands once the master is marked
// failed), token checks fail closed with 503 on every replica and
// anonymous requests are rate-limited in memory (no 5xx). The master comes
// back without its data: sessions whose refresh family lived there are
// refused (401, never accepted), the others keep working, every replica
// reports the loss, and refused users log in again.
func replicasLoseRedisMaster(t *testing.T, r [3]*server, cluster *redistest.Cluster) {
	expect(t, r[0].do("POST", "/api/auth/register", "", creds("kim@example.com", "many sessions")), 201, "register")
	type session struct {
		access string
		node   int
	}
	var sessions []session
	onNode := map[int]int{}
	for len(onNode) < 3 || len(sessions) < 12 {
		access, _ := login(t, r[len(sessions)%3], "kim@example.com", "many sessions")
		node := cluster.NodeFor(tokens.DefaultRedisPrefix + "{" + claim(t, access, "fid") + "}")
		sessions = append(sessions, session{access, node})
		onNode[node]++
	}
	const victim = 0

	cluster.Node(victim).Stop()
	cluster.WaitFailed()
	for i, s := range r {
		// sessions[0] was never checked, so no replica has it cached: the
		// check needs Redis and fails closed.
		if got := s.do("GET", "/api/me", sessions[0].access, "").status; got != 503 {
			t.Fatalf("replica %d with the cluster down: token check answered %d, want 503", i+1, got)
		}
		if got := s.do("GET", "/api/me", "", "").status; got != 401 {
			t.Fatalf("replica %d with the cluster down: anonymous request answered %d, want 401 (rate limit in memory)", i+1, got)
		}
	}

	cluster.Node(victim).Restart()
	cluster.WaitHealthy()
	// Each replica notices the loss (its data check reads the markers)
	// and forgets what its revocation cache remembered; one of them
	// alerts (each did before).
	for i, s := range r {
		deadline := time.Now().Add(10 * time.Second)
		for metric(t, s, "levqor_redis_data_lost_total") < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d did not report the lost data", i+1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	alerts := func() int {
		n := 0
		for _, s := range r {
			n += strings.Count(s.logs.String(), `title="Redis lost its data"`)
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); alerts() == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	time.Sleep(500 * time.Millisecond) // alerts are sent from a queue
	if n := alerts(); n != 1 {
		t.Fatalf("%d replicas alerted that Redis lost its data, want one", n)
	}
	refused := 0
	for i, s := range sessions {
		got := r[i%3].do("GET", "/api/me", s.access, "").status
		want := 200
		if s.node == victim {
			want = 401
			refused++
		}
		if got != want {
			t.Fatalf("session %d (family on master %d) after master %d returned empty: %d, want %d", i, s.node, victim, got, want)
		}
	}
	if refused == 0 || refused == len(sessions) {
		t.Fatalf("%d of %d sessions refused: the test did not split sessions over the masters", refused, len(sessions))
	}
	access, _ := login(t, r[2], "kim@example.com", "many sessions")
	expect(t, r[1].do("GET", "/api/me", access, ""), 200, "new login after the loss")
}

func jsonField(t *testing.T, body, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	v, _ := m[name].(string)
	if v == "" {
		t.Fatalf("no %s in %s", name, body)
	}
	return v
}

// claim reads one claim of a JWT the server issued (payload only).
func claim(t *testing.T, token, name string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return jsonField(t, string(b), name)
}

// TestReplicaKeysMustAgree: replicas on one database with different keys
// are caught. Another DSAR key refuses start-up (it pseudonymised the
// stored data); another signing key is logged at start, and doctor fails
// on the replica whose key is no longer the recorded one.
func TestReplicaKeysMustAgree(t *testing.T) {
	db := "LEVQOR_DATABASE_URL=" + pgtest.NewDatabase(t)
	const (
		dsar1 = "LEVQOR_DSAR_KEY=first pseudonymisation key of 32+ bytes"
		dsar2 = "LEVQOR_DSAR_KEY=second pseudonymisation key of 32+ bytes"
		jwt1  = "LEVQOR_JWT_SECRET=first signing secret of at least 32 bytes"
		jwt2  = "LEVQOR_JWT_SECRET=second signing secret of at least 32 bytes"
	)
	start(t, db, dsar1, jwt1) // records both fingerprints

	other := launch(t, db, dsar2, jwt1)
	select {
	case err := <-other.done:
		other.done <- err
		if err == nil || !strings.Contains(other.logs.String(), "give every replica the same LEVQOR_DSAR_KEY") {
			t.Fatalf("replica with another DSAR key: exit %v\n%s", err, other.logs.String())
		}
		if strings.Contains(other.logs.String(), "second pseudonymisation") {
			t.Fatal("the DSAR key is in the log")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a replica with another DSAR key started")
	}

	rotated := start(t, db, dsar1, jwt2)
	if !strings.Contains(rotated.logs.String(), "signing key differs") || strings.Contains(rotated.logs.String(), "second signing secret") {
		t.Fatalf("replica with another signing key:\n%s", rotated.logs.String())
	}
	out, code := cliEnv(t, t.TempDir(), []string{db, dsar1, jwt1}, "doctor")
	if code != 1 || !strings.Contains(out, "FAIL  keys shared with other replicas") || !strings.Contains(out, "LEVQOR_JWT_SECRET") {
		t.Fatalf("doctor on the replica with the outdated signing key: exit %d\n%s", code, out)
	}
	out, _ = cliEnv(t, t.TempDir(), []string{db, dsar1, jwt2}, "doctor")
	if !strings.Contains(out, "PASS  keys shared with other replicas") {
		t.Fatalf("doctor on the replica with the current keys:\n%s", out)
	}
}
