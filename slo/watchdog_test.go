package slo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/slo"
)

var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// target is an httptest.Server whose n-th answer follows a script: "ok",
// "slow" (advances the watchdog's clock past the threshold), "500", or
// "hang" (never answers; the probe times out).
type target struct {
	*httptest.Server
	clk  *testclock.Clock
	hits atomic.Int64
}

func newTarget(t *testing.T, clk *testclock.Clock, script ...string) *target {
	tg := &target{clk: clk}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(tg.hits.Add(1)) - 1
		step := "ok"
		if n < len(script) {
			step = script[n]
		} else if len(script) > 0 {
			step = script[len(script)-1]
		}
		switch step {
		case "slow":
			clk.Advance(350 * time.Millisecond)
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case "hang":
			<-r.Context().Done()
			return
		}
		clk.Advance(20 * time.Millisecond)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(tg.Close)
	return tg
}

type countingRollback struct {
	calls  atomic.Int64
	err    error
	reason string
}

func (c *countingRollback) Rollback(_ context.Context, reason string) error {
	c.calls.Add(1)
	c.reason = reason
	return c.err
}

type alerts struct {
	mu  sync.Mutex
	got []alert.Alert
}

func (a *alerts) Notify(_ context.Context, al alert.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
	return nil
}

func (a *alerts) list() []alert.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]alert.Alert(nil), a.got...)
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// newWatchdog is slo.NewWatchdog without the waits between probes.
func newWatchdog(cfg slo.WatchdogConfig) (*slo.Watchdog, error) {
	w, err := slo.NewWatchdog(cfg)
	if err == nil {
		slo.SetSleep(w, noSleep)
	}
	return w, err
}

func TestWatchdog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		script    []string
		closed    bool
		verdict   slo.Verdict
		probes    int
		rollbacks int64
		alertSev  []alert.Severity
	}{
		{"healthy", nil, false, slo.VerdictSuccess, 5, 0, nil},
		{"becomes slow", []string{"ok", "ok", "slow"}, false, slo.VerdictFailed, 5, 1, []alert.Severity{alert.SeverityCritical}},
		{"fails with 500", []string{"500"}, false, slo.VerdictFailed, 3, 1, []alert.Severity{alert.SeverityCritical}},
		{"times out", []string{"ok", "hang"}, false, slo.VerdictFailed, 4, 1, []alert.Severity{alert.SeverityCritical}},
		{"two failures stay under the limit", []string{"500", "ok", "slow", "ok", "ok"}, false, slo.VerdictSuccess, 5, 0, nil},
		{"connection refused", nil, true, slo.VerdictFailed, 3, 1, []alert.Severity{alert.SeverityCritical}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(start)
			tg := newTarget(t, clk, tc.script...)
			if tc.closed {
				tg.Close()
			}
			rb := &countingRollback{}
			al := &alerts{}
			w, err := newWatchdog(slo.WatchdogConfig{
				Name: "api", URL: tg.URL, ProbeTimeout: 100 * time.Millisecond,
				Rollbacker: rb, Notifier: al, Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := w.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != tc.verdict || len(rep.Probes) != tc.probes {
				t.Fatalf("verdict %v after %d probes %+v; want %v after %d", rep.Verdict, len(rep.Probes), rep.Probes, tc.verdict, tc.probes)
			}
			if rb.calls.Load() != tc.rollbacks || rep.RolledBack != (tc.rollbacks == 1) {
				t.Fatalf("rollback called %d times (RolledBack %v), want %d", rb.calls.Load(), rep.RolledBack, tc.rollbacks)
			}
			got := al.list()
			if len(got) != len(tc.alertSev) {
				t.Fatalf("alerts %+v, want severities %v", got, tc.alertSev)
			}
			for i, a := range got {
				if a.Severity != tc.alertSev[i] {
					t.Fatalf("alert %d severity %v", i, a.Severity)
				}
			}
			if tc.rollbacks == 1 && !strings.Contains(rb.reason, "api failed 3 of") {
				t.Fatalf("reason %q", rb.reason)
			}
		})
	}
}

func TestWatchdogProbeResults(t *testing.T) {
	clk := testclock.New(start)
	tg := newTarget(t, clk, "ok", "slow", "500")
	w, _ := newWatchdog(slo.WatchdogConfig{URL: tg.URL, Count: 3, FailureLimit: 3, Now: clk.Now})
	rep, _ := w.Run(context.Background())
	want := []struct {
		outcome slo.Outcome
		status  int
		latency time.Duration
		err     string
	}{
		{slo.OutcomePass, 200, 20 * time.Millisecond, ""},
		{slo.OutcomeFail, 200, 370 * time.Millisecond, "latency 370ms over 200ms"},
		{slo.OutcomeFail, 500, 0, "status 500"},
	}
	for i, p := range rep.Probes {
		if p.N != i+1 || p.Outcome != want[i].outcome || p.Status != want[i].status || p.Latency != want[i].latency || p.Err != want[i].err {
			t.Errorf("probe %d = %+v, want %+v", i, p, want[i])
		}
	}
	if rep.Verdict != slo.VerdictSuccess || rep.Passes != 1 || rep.Failures != 2 {
		t.Fatalf("%+v", rep)
	}
}

func TestWatchdogErrorsAndInconclusive(t *testing.T) {
	unmeasurable := func(script string) slo.Probe {
		n := 0
		return func(context.Context) (int, error) {
			c := script[n%len(script)]
			n++
			if c == 'e' {
				return 0, errors.Join(slo.ErrUnmeasurable, errors.New("prometheus unreachable"))
			}
			return 200, nil
		}
	}
	for _, tc := range []struct {
		script  string
		verdict slo.Verdict
		probes  int
		alerts  int
	}{
		{"eee", slo.VerdictError, 3, 1},
		{"epeep", slo.VerdictInconclusive, 5, 0}, // 2 of 5 measured
		{"eppep", slo.VerdictSuccess, 5, 0},      // 3 of 5 measured, all good
	} {
		t.Run(tc.script, func(t *testing.T) {
			rb := &countingRollback{}
			al := &alerts{}
			w, _ := newWatchdog(slo.WatchdogConfig{Probe: unmeasurable(tc.script), Rollbacker: rb, Notifier: al})
			rep, err := w.Run(context.Background())
			if err != nil || rep.Verdict != tc.verdict || len(rep.Probes) != tc.probes {
				t.Fatalf("verdict %v after %d probes (err %v)", rep.Verdict, len(rep.Probes), err)
			}
			if rb.calls.Load() != 0 {
				t.Fatal("rolled back without a Failed verdict")
			}
			if len(al.list()) != tc.alerts {
				t.Fatalf("alerts %+v", al.list())
			}
		})
	}
}

func TestWatchdogCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rb := &countingRollback{}
	n := 0
	probe := func(context.Context) (int, error) {
		n++
		if n == 2 {
			cancel()
		}
		return 500, nil
	}
	w, _ := newWatchdog(slo.WatchdogConfig{Probe: probe, Rollbacker: rb})
	rep, err := w.Run(ctx)
	if !errors.Is(err, context.Canceled) || rep.Verdict != slo.VerdictInconclusive || rb.calls.Load() != 0 {
		t.Fatalf("verdict %v err %v rollbacks %d", rep.Verdict, err, rb.calls.Load())
	}
}

func TestWatchdogRollbackFails(t *testing.T) {
	rb := &countingRollback{err: errors.New("deploy tool missing")}
	al := &alerts{}
	w, _ := newWatchdog(slo.WatchdogConfig{Probe: func(context.Context) (int, error) { return 503, nil }, Rollbacker: rb, Notifier: al})
	rep, err := w.Run(context.Background())
	if !errors.Is(err, slo.ErrRollback) || rep.RolledBack || rb.calls.Load() != 1 {
		t.Fatalf("err %v, RolledBack %v, calls %d", err, rep.RolledBack, rb.calls.Load())
	}
	a := al.list()
	if len(a) != 1 || !strings.Contains(a[0].Fields[len(a[0].Fields)-1].Value, "FAILED: deploy tool missing") {
		t.Fatalf("alert %+v", a)
	}
}

func TestWatchdogConfig(t *testing.T) {
	for name, cfg := range map[string]slo.WatchdogConfig{
		"no probe":          {},
		"limit above count": {URL: "http://x", Count: 2, FailureLimit: 3},
		"negative interval": {URL: "http://x", Interval: -1},
	} {
		if _, err := slo.NewWatchdog(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCommandRollbacker(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "reason")
	ok, _ := slo.NewCommand(slo.CommandConfig{Argv: []string{"sh", "-c", `printf %s "$LEVQOR_ROLLBACK_REASON" > "$OUT"`}, Env: []string{"OUT=" + out}})
	if err := ok.Rollback(context.Background(), "api failed 3 of 5 probes; $(rm -rf /)"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "api failed 3 of 5 probes; $(rm -rf /)" {
		t.Fatalf("reason passed as %q", b)
	}
	fail, _ := slo.NewCommand(slo.CommandConfig{Argv: []string{"sh", "-c", "echo cannot find release >&2; exit 3"}})
	err := fail.Rollback(context.Background(), "r")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "cannot find release") {
		t.Fatalf("err = %v", err)
	}
	slow, _ := slo.NewCommand(slo.CommandConfig{Argv: []string{"sleep", "30"}, Timeout: 100 * time.Millisecond})
	began := time.Now()
	err = slow.Rollback(context.Background(), "r")
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(began) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(began))
	}
	if _, err := slo.NewCommand(slo.CommandConfig{}); err == nil {
		t.Fatal("empty command accepted")
	}
}

func TestWebhookRollbacker(t *testing.T) {
	var got map[string]string
	var auth string
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
		_, _ = w.Write([]byte("deploy system says no"))
	}))
	defer srv.Close()
	h, _ := slo.NewWebhook(slo.WebhookConfig{URL: srv.URL + "/rollback", Service: "api", Header: http.Header{"Authorization": {"Bearer s3cret"}},
		Now: func() time.Time { return start }})
	if err := h.Rollback(context.Background(), "too slow"); err != nil {
		t.Fatal(err)
	}
	if got["service"] != "api" || got["reason"] != "too slow" || got["time"] != "2026-11-01T00:00:00Z" || auth != "Bearer s3cret" {
		t.Fatalf("body %v auth %q", got, auth)
	}
	status = http.StatusInternalServerError
	if err := h.Rollback(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "HTTP 500: deploy system says no") {
		t.Fatalf("err = %v", err)
	}
	srv.Close()
	leaky, _ := slo.NewWebhook(slo.WebhookConfig{URL: srv.URL + "/rollback?token=hunter2"})
	if err := leaky.Rollback(context.Background(), "x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

// TestWebhookRedirectIsFailure: a 301/302/303 is not followed (it would
// turn the POST into a body-less GET whose 200 proves nothing); every call
// carries an idempotency key.
func TestWebhookRedirectIsFailure(t *testing.T) {
	var gets atomic.Int64
	var keys []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
			w.WriteHeader(200)
			return
		}
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code == 0 {
			w.WriteHeader(204)
			return
		}
		http.Redirect(w, r, "/elsewhere", code)
	}))
	defer srv.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		h, _ := slo.NewWebhook(slo.WebhookConfig{URL: fmt.Sprintf("%s/rollback?code=%d", srv.URL, code)})
		if err := h.Rollback(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Fatalf("%d: err %v", code, err)
		}
	}
	if gets.Load() != 0 {
		t.Fatalf("the redirect was followed %d times", gets.Load())
	}
	h, _ := slo.NewWebhook(slo.WebhookConfig{URL: srv.URL + "/rollback"})
	_ = h.Rollback(context.Background(), "a")
	_ = h.Rollback(context.Background(), "b")
	if len(keys) != 7 || keys[5] == "" || keys[5] == keys[6] {
		t.Fatalf("idempotency keys %q", keys)
	}
	if _, err := slo.NewWebhook(slo.WebhookConfig{URL: "http://[::1]:namedport/hook?token=hunter2"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestProbeCrossOriginRedirect: a health check redirected to another host
// fails; a same-origin redirect is followed; the option allows it.
func TestProbeCrossOriginRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer other.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/healthz", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusMovedPermanently)
		default:
			w.WriteHeader(200)
		}
	}))
	defer target.Close()
	run := func(path string, allow bool) slo.Verdict {
		w, err := newWatchdog(slo.WatchdogConfig{URL: target.URL + path, Count: 3, FailureLimit: 2, CrossOriginRedirects: allow, LatencyThreshold: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := w.Run(context.Background())
		return rep.Verdict
	}
	if v := run("/away", false); v != slo.VerdictFailed {
		t.Fatalf("redirect to another host: %v, want failed", v)
	}
	if v := run("/moved", false); v != slo.VerdictSuccess {
		t.Fatalf("same-origin redirect: %v", v)
	}
	if v := run("/away", true); v != slo.VerdictSuccess {
		t.Fatalf("cross-origin allowed: %v", v)
	}
}
