package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
)

// recorder is a Notifier that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	alerts []alert.Alert
	err    error
}

func (r *recorder) Notify(_ context.Context, a alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
	return r.err
}

func (r *recorder) got() []alert.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Alert(nil), r.alerts...)
}

func TestSlog(t *testing.T) {
	var buf bytes.Buffer
	n := alert.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)))
	for _, sev := range []alert.Severity{alert.SeverityInfo, alert.SeveritySuccess, alert.SeverityWarning, alert.SeverityCritical} {
		if err := n.Notify(context.Background(), alert.Alert{Severity: sev, Title: "t", Fields: []alert.Field{{"k", "v"}}}); err != nil {
			t.Fatal(err)
		}
	}
	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		levels = append(levels, rec["level"].(string))
		if rec["fields"].(map[string]any)["k"] != "v" {
			t.Fatalf("fields lost: %s", line)
		}
	}
	if strings.Join(levels, ",") != "INFO,INFO,WARN,ERROR" {
		t.Fatalf("levels %v", levels)
	}
}

func TestMulti(t *testing.T) {
	ok, broken := &recorder{}, &recorder{err: errors.New("down")}
	err := alert.Multi(broken, ok).Notify(context.Background(), alert.Alert{Title: "x"})
	if err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("err = %v", err)
	}
	if len(ok.got()) != 1 || len(broken.got()) != 1 {
		t.Fatal("a failing notifier stopped the others")
	}
}

// blocker blocks every delivery until released.
type blocker struct {
	recorder
	release chan struct{}
	started chan struct{} // closed when the first delivery begins
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), started: make(chan struct{})}
}

func (b *blocker) Notify(ctx context.Context, a alert.Alert) error {
	b.once.Do(func() { close(b.started) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.recorder.Notify(ctx, a)
}

// stubborn ignores its context: it returns only when released.
type stubborn struct {
	once             sync.Once
	release, started chan struct{}
}

func (s *stubborn) Notify(context.Context, alert.Alert) error {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return nil
}

func TestQueue(t *testing.T) {
	b := newBlocker()
	q, err := alert.NewQueue(alert.QueueConfig{Next: b, Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// One alert is taken by the worker (blocked), two wait, the rest drop.
	if err := q.Notify(ctx, alert.Alert{Title: "0"}); err != nil {
		t.Fatal(err)
	}
	<-b.started
	for i := range 5 {
		err := q.Notify(ctx, alert.Alert{Title: "queued"})
		if full := errors.Is(err, alert.ErrQueueFull); full != (i >= 2) {
			t.Fatalf("alert %d: err = %v", i, err)
		}
	}
	if q.Dropped() != 3 {
		t.Fatalf("Dropped = %d, want 3", q.Dropped())
	}
	close(b.release)
	if err := q.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(b.got()); got != 3 || q.Delivered() != 3 {
		t.Fatalf("delivered %d (%d), want the blocked one and the two queued", got, q.Delivered())
	}
	if err := q.Notify(ctx, alert.Alert{}); !errors.Is(err, alert.ErrClosed) {
		t.Fatalf("after Shutdown: %v", err)
	}
	if err := q.Shutdown(ctx); err != nil {
		t.Fatal("second Shutdown:", err)
	}
}

func TestQueueShutdownDeadline(t *testing.T) {
	b := &stubborn{release: make(chan struct{}), started: make(chan struct{})} // ignores ctx
	q, _ := alert.NewQueue(alert.QueueConfig{Next: b, Size: 8})
	for range 5 {
		_ = q.Notify(context.Background(), alert.Alert{})
	}
	<-b.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := q.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, alert.ErrUndelivered) || !strings.Contains(err.Error(), "5 alert(s)") {
		t.Fatalf("Shutdown = %v", err)
	}
	// It returns at the deadline even though the notifier never does.
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Shutdown returned %v after a 100ms deadline", d)
	}
	if q.Delivered() != 0 {
		t.Fatalf("delivered %d", q.Delivered())
	}
	close(b.release) // the delivery goroutine exits once the notifier returns
}

func TestHistory(t *testing.T) {
	now := at
	next := &recorder{}
	h, _ := alert.NewHistory(alert.HistoryConfig{Next: next, Size: 3, Now: func() time.Time { return now }})
	ctx := context.Background()
	for i, sev := range []alert.Severity{alert.SeverityInfo, alert.SeverityCritical, alert.SeverityWarning, alert.SeverityInfo} {
		now = at.Add(time.Duration(i) * time.Minute)
		if i == 2 {
			next.err = errors.New("telegram down")
		} else {
			next.err = nil
		}
		_ = h.Notify(ctx, alert.Alert{Severity: sev, Title: string(rune('a' + i))})
	}
	titles := func(rs []alert.Record) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.Alert.Title)
		}
		return strings.Join(s, "")
	}
	if got := titles(h.Records(alert.Query{})); got != "dcb" {
		t.Fatalf("all = %q, want newest first, oldest evicted: dcb", got)
	}
	if got := titles(h.Records(alert.Query{MinSeverity: alert.SeverityWarning})); got != "cb" {
		t.Fatalf("warning+ = %q", got)
	}
	failed := h.Records(alert.Query{FailedOnly: true})
	if titles(failed) != "c" || failed[0].Err != "telegram down" || failed[0].Delivered() {
		t.Fatalf("failed = %+v", failed)
	}
	if got := titles(h.Records(alert.Query{Since: at.Add(2 * time.Minute), Limit: 1})); got != "d" {
		t.Fatalf("since+limit = %q", got)
	}
}

func TestDedup(t *testing.T) {
	now := at
	next := &recorder{}
	d, _ := alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	down := alert.SystemDown("db", errors.New("connection refused"))
	for range 5 {
		if err := d.Notify(ctx, down); err != nil {
			t.Fatal(err)
		}
	}
	if len(next.got()) != 1 || d.Suppressed(down.DedupKey()) != 4 {
		t.Fatalf("sent %d, suppressed %d; want 1 and 4", len(next.got()), d.Suppressed(down.DedupKey()))
	}
	_ = d.Notify(ctx, alert.SystemDown("cache", nil)) // another key is not held back
	if len(next.got()) != 2 {
		t.Fatal("different key suppressed")
	}
	now = now.Add(time.Hour)
	_ = d.Notify(ctx, down)
	sent := next.got()
	last := sent[len(sent)-1]
	if len(sent) != 3 || len(last.Fields) != 1 || last.Fields[0].Key != "Repeated" || !strings.HasPrefix(last.Fields[0].Value, "4 more times") {
		t.Fatalf("repeat after interval: %+v", last)
	}
	// A failed delivery is not remembered: the next occurrence is tried.
	next.err = errors.New("down")
	flaky := alert.Alert{Title: "flaky"}
	_ = d.Notify(ctx, flaky)
	_ = d.Notify(ctx, flaky)
	if n := len(next.got()); n != 5 {
		t.Fatalf("after failures sent %d, want both attempts (5 total)", n)
	}
}

func TestNewAlerter(t *testing.T) {
	var logs strings.Builder
	a, err := alert.New(alert.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = a.Notify(ctx, alert.SystemDown("db", nil))
	_ = a.Notify(ctx, alert.SystemDown("db", nil)) // held back by de-duplication
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "db is down"); n != 1 || a.Queue().Delivered() != 2 || len(a.History().Records(alert.Query{})) != 1 {
		t.Fatalf("unconfigured Telegram: %d log lines, %d delivered, history %d", n, a.Queue().Delivered(), len(a.History().Records(alert.Query{})))
	}
	if _, err := alert.New(alert.Config{Telegram: alert.TelegramConfig{Token: testToken}}); err == nil {
		t.Fatal("token without chat accepted")
	}
	if _, err := alert.New(alert.Config{Telegram: alert.TelegramConfig{Token: testToken, ChatID: "1"}}); err != nil {
		t.Fatalf("configured: %v", err)
	}
}

func TestTemplates(t *testing.T) {
	for _, tc := range []struct {
		a    alert.Alert
		sev  alert.Severity
		text string
	}{
		{alert.SystemDown("api", errors.New("timeout")), alert.SeverityCritical, "api is down"},
		{alert.Recovered("api"), alert.SeveritySuccess, "api recovered"},
		{alert.SpendBreach("2026-11-25", "$40.00", "$50.00", 80), alert.SeverityWarning, "80%"},
		{alert.SpendBreach("2026-11-25", "$51.00", "$50.00", 100), alert.SeverityCritical, "100%"},
		{alert.SLOBreach("latency p99", "350ms", "200ms"), alert.SeverityCritical, "latency p99"},
		{alert.PayoutDone("acme", "$120.00", "tr_1"), alert.SeveritySuccess, "acme"},
	} {
		if tc.a.Severity != tc.sev || !strings.Contains(tc.a.Title, tc.text) || tc.a.Key == "" {
			t.Errorf("%+v", tc.a)
		}
	}
	if s, err := alert.ParseSeverity("WARNING"); err != nil || s != alert.SeverityWarning {
		t.Error("ParseSeverity")
	}
	if _, err := alert.ParseSeverity("panic"); err == nil {
		t.Error("unknown severity accepted")
	}
}

// TestSpendBreachDedupPerDay: a 4 h Dedup does not swallow the next day's
// first threshold alert.
func TestSpendBreachDedupPerDay(t *testing.T) {
	now := time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	next := &recorder{}
	d, _ := alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: 4 * time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	_ = d.Notify(ctx, alert.SpendBreach("2026-11-25", "$40.00", "$50.00", 80))
	now = now.Add(2 * time.Hour)
	_ = d.Notify(ctx, alert.SpendBreach("2026-11-26", "$41.00", "$50.00", 80))
	_ = d.Notify(ctx, alert.SpendBreach("2026-11-26", "$42.00", "$50.00", 80)) // same day: held back
	if n := len(next.got()); n != 2 {
		t.Fatalf("%d alerts delivered; want yesterday's and today's first", n)
	}
}

// slowCounter counts deliveries and takes a moment, so concurrent
// notifications overlap.
type slowCounter struct{ n atomic.Int64 }

func (s *slowCounter) Notify(context.Context, alert.Alert) error {
	s.n.Add(1)
	time.Sleep(5 * time.Millisecond)
	return nil
}

// TestDedupConcurrent: 10 identical alerts at once are delivered once.
func TestDedupConcurrent(t *testing.T) {
	next := &slowCounter{}
	d, _ := alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: time.Hour})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _ = d.Notify(context.Background(), alert.SystemDown("db", nil)) })
	}
	wg.Wait()
	if n := next.n.Load(); n != 1 || d.Suppressed(alert.SystemDown("db", nil).DedupKey()) != 9 {
		t.Fatalf("delivered %d times, suppressed %d; want 1 and 9", n, d.Suppressed(alert.SystemDown("db", nil).DedupKey()))
	}
}

// TestDedupBounded: MaxKeys bounds the keys held, however many distinct
// keys arrive within the interval.
func TestDedupBounded(t *testing.T) {
	next := &recorder{}
	d, _ := alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: time.Hour, MaxKeys: 1000})
	ctx := context.Background()
	for i := range 50_000 {
		_ = d.Notify(ctx, alert.Alert{Title: "t", Key: strconv.Itoa(i)})
	}
	if d.Len() != 1000 {
		t.Fatalf("%d keys held with MaxKeys 1000", d.Len())
	}
	// The most recent keys are still de-duplicated.
	before := len(next.got())
	_ = d.Notify(ctx, alert.Alert{Title: "t", Key: "49999"})
	if len(next.got()) != before {
		t.Fatal("a recent key was forgotten")
	}
}

// BenchmarkDedupDistinctKeys: each Notify is O(1) with a full key set
// (1M distinct keys through a 10k-key Dedup).
func BenchmarkDedupDistinctKeys(b *testing.B) {
	d, _ := alert.NewDedup(alert.DedupConfig{Next: nopNotifier{}, RepeatInterval: time.Hour})
	keys := make([]string, 1_000_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = d.Notify(ctx, alert.Alert{Title: "t", Key: keys[i%len(keys)]})
	}
}

type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, alert.Alert) error { return nil }

// memClaimer is a Claimer shared by several Dedups, as Redis or a
// database table is shared by replicas; it can be made to fail.
type memClaimer struct {
	mu       sync.Mutex
	now      func() time.Time
	until    map[string]time.Time
	owner    map[string]*alert.Dedup
	err      error
	released []string
}

func (c *memClaimer) claimer(d **alert.Dedup) alert.Claimer { return claimerOf{c, d} }

// claimerOf is one process's view of the shared claims.
type claimerOf struct {
	c  *memClaimer
	me **alert.Dedup
}

func (v claimerOf) Claim(_ context.Context, key string, ttl time.Duration) (bool, time.Time, error) {
	c := v.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, time.Time{}, c.err
	}
	if u, ok := c.until[key]; ok && c.now().Before(u) {
		return false, u, nil
	}
	c.until[key], c.owner[key] = c.now().Add(ttl), *v.me
	return true, time.Time{}, nil
}

func (v claimerOf) Release(_ context.Context, key string) error {
	c := v.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner[key] == *v.me {
		delete(c.until, key)
		c.released = append(c.released, key)
	}
	return nil
}

// TestDedupSharedClaim: replicas sharing a Claimer deliver an alert they
// all raise once per interval between them; a replica that found the key
// claimed holds it back until that claim ends, not longer; a failed
// delivery releases the claim; a failing Claimer lets the alert through.
func TestDedupSharedClaim(t *testing.T) {
	now := at
	clock := func() time.Time { return now }
	shared := &memClaimer{now: clock, until: map[string]time.Time{}, owner: map[string]*alert.Dedup{}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	next := &recorder{}
	var replicas [3]*alert.Dedup
	for i := range replicas {
		d, err := alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: time.Hour, Claimer: shared.claimer(&replicas[i]), Logger: log, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = d
	}
	ctx := context.Background()
	burn := alert.Alert{Severity: alert.SeverityCritical, Title: "SLO burn", Key: "burn|api"}
	notifyAll := func() {
		t.Helper()
		for _, d := range replicas {
			if err := d.Notify(ctx, burn); err != nil {
				t.Fatal(err)
			}
		}
	}
	notifyAll()
	if n := len(next.got()); n != 1 {
		t.Fatalf("three replicas raising one alert delivered it %d times; want once", n)
	}
	if replicas[1].Suppressed(burn.DedupKey()) != 1 {
		t.Fatalf("a replica that found the key claimed counted %d repeats; want 1", replicas[1].Suppressed(burn.DedupKey()))
	}

	// Half an hour later replica 1 asks again: still held back, without
	// asking the claimer (its claim ends with replica 0's).
	now = now.Add(30 * time.Minute)
	shared.err = errors.New("claimer down") // would let the alert through if asked
	_ = replicas[1].Notify(ctx, burn)
	if n := len(next.got()); n != 1 {
		t.Fatalf("replica 1 delivered inside replica 0's claim: %d deliveries", n)
	}
	shared.err = nil

	// When the claim ends, the next replica to raise it delivers it, with
	// the repeats it held back.
	now = now.Add(30 * time.Minute)
	_ = replicas[2].Notify(ctx, burn)
	_ = replicas[0].Notify(ctx, burn)
	got := next.got()
	if len(got) != 2 {
		t.Fatalf("after the claim ended: %d deliveries; want 2", len(got))
	}
	if f := got[1].Fields; len(f) != 1 || f[0].Key != "Repeated" || !strings.HasPrefix(f[0].Value, "1 more times") {
		t.Fatalf("replica 2's delivery carries %+v; want its one held-back repeat", f)
	}

	// A failed delivery releases the claim: another replica tries at once.
	now = now.Add(2 * time.Hour)
	next.err = errors.New("telegram down")
	_ = replicas[0].Notify(ctx, burn)
	next.err = nil
	if len(shared.released) != 1 {
		t.Fatalf("a failed delivery released %v; want its claim", shared.released)
	}
	_ = replicas[1].Notify(ctx, burn)
	if n := len(next.got()); n != 4 {
		t.Fatalf("%d deliveries; want the failed one and replica 1's retry (4)", n)
	}

	// A Claimer that fails lets the alert through, and says so.
	shared.err = errors.New("connection refused")
	other := alert.Alert{Title: "Housekeeping failed", Key: "housekeeping"}
	if err := replicas[2].Notify(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := len(next.got()); n != 5 || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("with the claimer down: %d deliveries (want 5); log %q", n, logs.String())
	}
}
