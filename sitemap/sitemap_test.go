package sitemap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/sitemap"
)

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	err := sitemap.Write(&b, []sitemap.URL{
		{Loc: "https://levqor.example/", LastMod: time.Date(2026, 11, 26, 23, 0, 0, 0, time.FixedZone("x", -3600))},
		{Loc: "https://levqor.example/a?x=1&y=<2>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/sitemap.xml")
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	for _, bad := range []string{"/relative", "ftp://levqor.example/", "https://", "https://user:pw@levqor.example/", "https://levqor.example/" + strings.Repeat("a", 2100)} {
		var out bytes.Buffer
		if err := sitemap.Write(&out, []sitemap.URL{{Loc: "https://ok.example/"}, {Loc: bad}}); !errors.Is(err, sitemap.ErrInvalidURL) || out.Len() != 0 {
			t.Fatalf("%q: err %v, wrote %d bytes", bad, err, out.Len())
		}
	}
	if err := sitemap.Write(&b, make([]sitemap.URL, sitemap.MaxURLs+1)); err == nil {
		t.Fatal("more than MaxURLs accepted")
	}
}

func TestValidKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"abcd1234": true, "A-b-C-d-1-2-3-4": true, strings.Repeat("k", 128): true,
		"short": false, strings.Repeat("k", 129): false, "has space1": false, "under_score": false, "ünïcødé123": false,
	} {
		if err := sitemap.ValidKey(key); (err == nil) != ok || (err != nil && !errors.Is(err, sitemap.ErrInvalidKey)) {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", key, err, ok)
		}
	}
}

// fakeIndexNow answers with the queued status codes (then 200) and
// records each request body.
type fakeIndexNow struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	retry    string // Retry-After on 429
	bodies   []map[string]any
}

func newFakeIndexNow(t *testing.T, statuses ...int) *fakeIndexNow {
	f := &fakeIndexNow{statuses: statuses}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var body map[string]any
		if r.Method != "POST" || r.URL.Path != "/indexnow" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
			json.NewDecoder(r.Body).Decode(&body) != nil {
			w.WriteHeader(400)
			return
		}
		f.bodies = append(f.bodies, body)
		st := 200
		if len(f.statuses) > 0 {
			st, f.statuses = f.statuses[0], f.statuses[1:]
		}
		if st == 429 && f.retry != "" {
			w.Header().Set("Retry-After", f.retry)
		}
		w.WriteHeader(st)
		if st >= 400 {
			fmt.Fprintf(w, "reason for %d", st)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func client(t *testing.T, f *fakeIndexNow) (*sitemap.IndexNow, *[]time.Duration) {
	t.Helper()
	c, err := sitemap.NewIndexNow(sitemap.IndexNowConfig{Key: "key-12345678", KeyLocation: "https://levqor.example/key-12345678.txt", Endpoint: f.URL + "/indexnow"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	sitemap.SetSleep(c, func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil })
	return c, &waits
}

func TestSubmitAnswers(t *testing.T) {
	urls := []string{"https://levqor.example/", "https://levqor.example/pricing"}
	for _, tc := range []struct {
		name     string
		statuses []int
		retry    string
		want     error // nil: success
		requests int
		waits    int
	}{
		{"200", []int{200}, "", nil, 1, 0},
		{"202", []int{202}, "", nil, 1, 0},
		{"400", []int{400}, "", sitemap.ErrRejected, 1, 0},
		{"403", []int{403}, "", sitemap.ErrRejected, 1, 0},
		{"422", []int{422}, "", sitemap.ErrRejected, 1, 0},
		{"429 then 200", []int{429, 200}, "2", nil, 2, 1},
		{"429 always", []int{429, 429, 429, 429}, "", sitemap.ErrRateLimited, 4, 3},
		{"429 asking for a day", []int{429}, "86400", sitemap.ErrRateLimited, 1, 0},
		{"503 then 202", []int{503, 202}, "", nil, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIndexNow(t, tc.statuses...)
			f.retry = tc.retry
			c, waits := client(t, f)
			res, err := c.Submit(context.Background(), urls)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if res.Requests != tc.requests || len(*waits) != tc.waits {
				t.Fatalf("%d requests, waits %v; want %d requests, %d waits", res.Requests, *waits, tc.requests, tc.waits)
			}
			if tc.want == nil && res.Submitted != 2 {
				t.Fatalf("submitted %d", res.Submitted)
			}
			if tc.want != nil && tc.want == sitemap.ErrRejected && !strings.Contains(err.Error(), "reason for") {
				t.Fatalf("the engine's reason is missing: %v", err)
			}
			if tc.retry == "2" && (*waits)[0] != 2*time.Second {
				t.Fatalf("Retry-After 2 not honoured: %v", *waits)
			}
			b := f.bodies[0]
			if b["host"] != "levqor.example" || b["key"] != "key-12345678" || b["keyLocation"] != "https://levqor.example/key-12345678.txt" || len(b["urlList"].([]any)) != 2 {
				t.Fatalf("request body %v", b)
			}
		})
	}
}

func TestSubmitBatchesAndHosts(t *testing.T) {
	f := newFakeIndexNow(t)
	c, _ := client(t, f)
	urls := make([]string, sitemap.MaxIndexNowBatch+1)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://levqor.example/p/%d", i)
	}
	res, err := c.Submit(context.Background(), urls)
	if err != nil || res.Submitted != len(urls) || res.Requests != 2 || len(f.bodies[0]["urlList"].([]any)) != sitemap.MaxIndexNowBatch || len(f.bodies[1]["urlList"].([]any)) != 1 {
		t.Fatalf("%+v, %v, %d requests", res, err, len(f.bodies))
	}
	if _, err := c.Submit(context.Background(), []string{"https://other.example/"}); !errors.Is(err, sitemap.ErrInvalidURL) {
		t.Fatalf("another host: %v", err)
	}
	if _, err := c.Submit(context.Background(), nil); err == nil {
		t.Fatal("no URLs accepted")
	}
	if len(f.bodies) != 2 {
		t.Fatalf("refused submissions reached the engine: %d requests", len(f.bodies))
	}
}

func TestNewIndexNowValidates(t *testing.T) {
	for name, cfg := range map[string]sitemap.IndexNowConfig{
		"bad key":          {Key: "short", KeyLocation: "https://levqor.example/short.txt"},
		"no key location":  {Key: "key-12345678"},
		"bad endpoint":     {Key: "key-12345678", KeyLocation: "https://levqor.example/k.txt", Endpoint: "not a url"},
		"negative retries": {Key: "key-12345678", KeyLocation: "https://levqor.example/k.txt", Attempts: -1},
	} {
		if _, err := sitemap.NewIndexNow(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
