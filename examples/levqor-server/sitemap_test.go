package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const indexNowKey = "levqor-test-key-0123"

// TestSitemapRobotsAndKey: robots.txt names the sitemap, the sitemap has
// absolute URLs from LEVQOR_PUBLIC_URL with <lastmod>, and the IndexNow
// key is served as text/plain at /<key>.txt.
func TestSitemapRobotsAndKey(t *testing.T) {
	s := start(t, "LEVQOR_PUBLIC_URL=https://levqor.example", "LEVQOR_INDEXNOW_KEY="+indexNowKey)
	r := s.do("GET", "/robots.txt", "", "")
	expect(t, r, 200, "robots.txt")
	if !strings.Contains(r.body, "\nSitemap: https://levqor.example/sitemap.xml\n") || !strings.Contains(r.body, "Disallow: /api/") ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("robots.txt: %q", r.body)
	}
	r = s.do("GET", "/sitemap.xml", "", "")
	expect(t, r, 200, "sitemap.xml")
	if !strings.Contains(r.body, "<url><loc>https://levqor.example/</loc><lastmod>2026-11-26</lastmod></url>") {
		t.Fatalf("sitemap.xml: %s", r.body)
	}
	r = s.do("GET", "/"+indexNowKey+".txt", "", "")
	expect(t, r, 200, "key file")
	if r.body != indexNowKey || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("key file: %q %q", r.body, r.header.Get("Content-Type"))
	}
	expect(t, s.do("GET", "/other-key-12345.txt", "", ""), 404, "another key")
}

// fakeIndexNow answers one status to every submission and records them.
type fakeIndexNow struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	bodies []map[string]any
}

func newFakeIndexNow(t *testing.T, status int) *fakeIndexNow {
	f := &fakeIndexNow{status: status}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/indexnow" || json.Unmarshal(b, &body) != nil {
			w.WriteHeader(400)
			return
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.mu.Unlock()
		if f.status == 429 {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(f.status)
		if f.status >= 400 {
			io.WriteString(w, "engine says "+strconv.Itoa(f.status))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIndexNow) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

// sitemapExitRejected is `sitemap submit`'s exit code for a rejection.
const sitemapExitRejected = 1

// TestSitemapSubmit runs `sitemap submit` against a fake IndexNow
// endpoint for each answer it handles; a rejection (which every later run
// meets too until someone fixes the key) also alerts.
func TestSitemapSubmit(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		status   int
		exit     int
		requests int
		say      string
	}{
		{200, 0, 1, "submitted 1 URLs"},
		{202, 0, 1, "submitted 1 URLs"},
		{400, 1, 1, "400 Bad request"},
		{403, 1, 1, "403 Forbidden"},
		{422, 1, 1, "422 Unprocessable Entity"},
		{429, 2, 4, "try again later"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			f := newFakeIndexNow(t, tc.status)
			tg := newFakeTelegram(t)
			env := append(tg.env(), "LEVQOR_PUBLIC_URL=https://levqor.example", "LEVQOR_INDEXNOW_KEY="+indexNowKey, "LEVQOR_INDEXNOW_API="+f.URL+"/indexnow")
			out, exit := cliEnv(t, data, env, "sitemap", "submit")
			if exit != tc.exit || !strings.Contains(out, tc.say) || f.count() != tc.requests {
				t.Fatalf("exit %d (want %d), %d requests (want %d):\n%s", exit, tc.exit, f.count(), tc.requests, out)
			}
			wantAlerts := 0
			if tc.exit == sitemapExitRejected {
				wantAlerts = 1
			}
			if sent := tg.sent(); len(sent) != wantAlerts || wantAlerts == 1 && !strings.Contains(sent[0], "Sitemap submission rejected") {
				t.Fatalf("alerts after a %d: %q", tc.status, sent)
			}
			if tc.status >= 400 && tc.status != 429 && !strings.Contains(out, "engine says") {
				t.Fatalf("the engine's reason is missing:\n%s", out)
			}
			b := f.bodies[0]
			if b["host"] != "levqor.example" || b["key"] != indexNowKey || b["keyLocation"] != "https://levqor.example/"+indexNowKey+".txt" ||
				len(b["urlList"].([]any)) != 1 || b["urlList"].([]any)[0] != "https://levqor.example/" {
				t.Fatalf("submission: %v", b)
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		f := newFakeIndexNow(t, 200)
		out, exit := cliEnv(t, data, []string{"LEVQOR_PUBLIC_URL=https://levqor.example", "LEVQOR_INDEXNOW_KEY=" + indexNowKey, "LEVQOR_INDEXNOW_API=" + f.URL + "/indexnow"}, "sitemap", "submit", "--dry-run")
		if exit != 0 || !strings.Contains(out, "https://levqor.example/") || f.count() != 0 {
			t.Fatalf("exit %d, %d requests:\n%s", exit, f.count(), out)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		if out, exit := cliEnv(t, data, []string{"LEVQOR_PUBLIC_URL=https://levqor.example"}, "sitemap", "submit"); exit != 1 || !strings.Contains(out, "LEVQOR_INDEXNOW_KEY is not set") {
			t.Fatalf("no key: exit %d\n%s", exit, out)
		}
		if out, exit := cliEnv(t, data, []string{"LEVQOR_INDEXNOW_KEY=" + indexNowKey}, "sitemap", "submit"); exit != 1 || !strings.Contains(out, "LEVQOR_PUBLIC_URL is not set") {
			t.Fatalf("no public URL: exit %d\n%s", exit, out)
		}
		if out, exit := cliEnv(t, data, []string{"LEVQOR_INDEXNOW_KEY=bad key!"}, "sitemap", "submit"); exit == 0 || !strings.Contains(out, "LEVQOR_INDEXNOW_KEY") || strings.Contains(out, "bad key!") {
			t.Fatalf("bad key: exit %d\n%s", exit, out)
		}
	})
}

// TestSitemapSubmitFromCronOnEveryReplica: the README's crontab installed
// alike on three replicas of one PostgreSQL runs `sitemap submit --if-due
// 20h` on each at the same minute: IndexNow is asked once between them,
// and a second round asks nothing; a run the engine refused gives its
// claim back, so the next run tries again. Before, each replica submitted.
func TestSitemapSubmitFromCronOnEveryReplica(t *testing.T) {
	env := migratedReplicaEnv(t)
	refusing := newFakeIndexNow(t, 403)
	f := newFakeIndexNow(t, 202)
	submit := func(engine *fakeIndexNow, data string) (string, int) {
		return cliEnv(t, data, append(env, "LEVQOR_PUBLIC_URL=https://levqor.example", "LEVQOR_INDEXNOW_KEY="+indexNowKey,
			"LEVQOR_INDEXNOW_API="+engine.URL+"/indexnow"), "sitemap", "submit", "--if-due", "20h")
	}
	if out, code := submit(refusing, t.TempDir()); code != 1 || refusing.count() != 1 {
		t.Fatalf("a refused submission: exit %d, %d requests\n%s", code, refusing.count(), out)
	}
	for round := range 2 {
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				if out, code := submit(f, t.TempDir()); code != 0 {
					t.Errorf("replica %d: exit %d\n%s", i, code, out)
				}
			})
		}
		wg.Wait()
		if n := f.count(); n != 1 {
			t.Fatalf("round %d: IndexNow asked %d times by three replicas; want once in all", round+1, n)
		}
	}
	if out, code := submit(f, t.TempDir()); code != 0 || !strings.Contains(out, "not submitted") {
		t.Fatalf("a run inside the period: exit %d\n%s", code, out)
	}
}
