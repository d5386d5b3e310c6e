package spendguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/spendguard"
)

// TestFailedPauseIsRetried: a Pauser that fails is an error, alerted, not
// recorded as paused, and tried again on the next check.
func TestFailedPauseIsRetried(t *testing.T) {
	src := &fixedSource{name: "api"}
	src.set(6000, nil)
	clk := testclock.New(day.Add(20 * time.Hour))
	calls, failing := 0, true
	notes := &alerts{}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: []spendguard.Source{src}, Notifier: notes, Now: clk.Now, Logger: quietLog,
		Pauser: spendguard.PauseFunc(func(context.Context, string) error {
			calls++
			if failing {
				return errors.New("read-only file system")
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := g.Check(ctx)
	if err == nil || c.Paused || calls != 1 {
		t.Fatalf("failed pause: paused %v, err %v, calls %d", c.Paused, err, calls)
	}
	if !strings.Contains(strings.Join(notes.titles(), "|"), "could NOT be paused") {
		t.Fatalf("no alert for the failed pause: %v", notes.titles())
	}
	c, err = g.Check(ctx)
	if err == nil || c.Paused || calls != 2 {
		t.Fatalf("second check must retry: paused %v, err %v, calls %d", c.Paused, err, calls)
	}
	failing = false
	c, err = g.Check(ctx)
	if err != nil || !c.Paused || calls != 3 {
		t.Fatalf("retry that works: paused %v, err %v, calls %d", c.Paused, err, calls)
	}
	if c, _ = g.Check(ctx); !c.Paused || calls != 3 {
		t.Fatalf("paused once is enough: calls %d", calls)
	}
}

// TestDayBoundsAcrossDST: in zones where a DST change skips (or repeats)
// midnight, the day starts at its first instant, checked against a
// minute-by-minute scan.
func TestDayBoundsAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		zone string
		date string // a transition day
	}{
		{"Atlantic/Azores", "2026-03-29"},
		{"America/Santiago", "2026-09-06"},
		{"America/Havana", "2026-03-08"},
		{"America/Asuncion", "2023-10-01"},
		{"America/Sao_Paulo", "2018-11-04"},
		{"Asia/Beirut", "2026-03-29"},
		{"Europe/London", "2026-03-29"},
		{"America/New_York", "2026-11-01"},
		{"Australia/Lord_Howe", "2026-10-04"},
		{"UTC", "2026-11-25"},
	} {
		t.Run(tc.zone+" "+tc.date, func(t *testing.T) {
			loc, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Skipf("no tzdata for %s: %v", tc.zone, err)
			}
			d, _ := time.Parse(time.DateOnly, tc.date)
			noon := time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, loc)
			start, end := spendguard.DayBounds(noon, loc)
			// The reference: scan minute by minute for where the date changes.
			want := func(from time.Time, date string) time.Time {
				for x := from; ; x = x.Add(time.Minute) {
					if x.In(loc).Format(time.DateOnly) == date {
						return x
					}
				}
			}
			wantStart := want(noon.Add(-36*time.Hour).Truncate(time.Minute), tc.date)
			next := time.Date(d.Year(), d.Month(), d.Day()+1, 12, 0, 0, 0, loc).Format(time.DateOnly)
			wantEnd := want(noon, next)
			if !start.Equal(wantStart) || !end.Equal(wantEnd) {
				t.Fatalf("bounds %v – %v, want %v – %v", start, end, wantStart, wantEnd)
			}
			if start.In(loc).Format(time.DateOnly) != tc.date {
				t.Fatalf("day starts on %v", start.In(loc))
			}
			// A check a second after the start is labelled with the new day.
			src := &fixedSource{name: "api"}
			src.set(100, nil)
			clk := testclock.New(start.Add(time.Second))
			g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Location: loc, Now: clk.Now, Logger: quietLog})
			if c, _ := g.Check(context.Background()); c.Day != tc.date {
				t.Fatalf("check at %v labelled %s", start.Add(time.Second).In(loc), c.Day)
			}
		})
	}
}

var quietLog = slog.New(slog.DiscardHandler)

// linesSource reports fixed cost lines.
type linesSource struct {
	lines []spendguard.Line
}

func (s linesSource) Name() string { return "lines" }
func (s linesSource) Lines(context.Context, spendguard.Period) ([]spendguard.Line, error) {
	return s.lines, nil
}

// TestOverflowIsUnknown: costs that overflow int64 make the check
// incomplete (unknown), never a wrapped negative spend.
func TestOverflowIsUnknown(t *testing.T) {
	cost := func(a int64) spendguard.Line {
		return spendguard.Line{Label: "x", Kind: spendguard.KindCost, Amount: money.New(a, "USD")}
	}
	for name, sources := range map[string][]spendguard.Source{
		"in one source":     {linesSource{[]spendguard.Line{cost(math.MaxInt64), cost(10000)}}},
		"across sources":    {linesSource{[]spendguard.Line{cost(math.MaxInt64)}}, linesSource{[]spendguard.Line{cost(10000)}}},
		"negative overflow": {linesSource{[]spendguard.Line{cost(math.MinInt64), cost(-1)}}},
	} {
		t.Run(name, func(t *testing.T) {
			g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: sources, Now: testclock.New(day.Add(12 * time.Hour)).Now, Logger: quietLog})
			c, _ := g.Check(context.Background())
			if c.Complete || len(c.Failed) == 0 {
				t.Fatalf("overflow reported as complete: %+v", c)
			}
			for _, ts := range c.Thresholds {
				if ts.State == spendguard.StateOK {
					t.Fatalf("threshold %d OK with unknown spend", ts.Percent)
				}
			}
		})
	}
}

// TestForecastConfig: a negative MinForecastElapsed is refused; a check at
// 00:00:00 never divides by zero.
func TestForecastConfig(t *testing.T) {
	src := &fixedSource{name: "api"}
	src.set(500, nil)
	if _, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, MinForecastElapsed: -time.Hour}); err == nil {
		t.Fatal("negative MinForecastElapsed accepted")
	}
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, MinForecastElapsed: time.Nanosecond, Now: testclock.New(day).Now, Logger: quietLog})
	c, _ := g.Check(context.Background())
	if c.Forecast.Amount < 0 || c.Forecast.Amount == math.MinInt64 {
		t.Fatalf("forecast at midnight: %v", c.Forecast)
	}
}

// TestFlagsFileBadContent: valid JSON of the wrong shape is an error for
// State and Pause, never a panic, and the middleware fails closed.
func TestFlagsFileBadContent(t *testing.T) {
	for _, content := range []string{"null", "[]", `"paused"`, "42", `{"billing_paused": "yes"}`, `{"paused_at": 7}`, "{", ""} {
		t.Run(content, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flags.json")
			_ = os.WriteFile(path, []byte(content), 0o600)
			f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
			if _, err := f.State(t.Context()); err == nil {
				t.Fatal("State accepted it")
			}
			if err := f.Pause(context.Background(), "limit"); err == nil {
				t.Fatal("Pause overwrote a file it could not read")
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Fatal("the file was changed")
			}
			rec := httptest.NewRecorder()
			spendguard.BlockWhilePaused(f)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != 503 {
				t.Fatalf("middleware answered %d, want 503 (fail closed)", rec.Code)
			}
		})
	}
}

// TestFlagsFileSeesReplacement: a replacement with the same size and
// modification time (a different inode) is seen.
func TestFlagsFileSeesReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(p, content string) {
		_ = os.WriteFile(p, []byte(content), 0o600)
		_ = os.Chtimes(p, mtime, mtime)
	}
	write(path, `{"billing_paused": false, "x": 1}`)
	f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
	if st, err := f.State(t.Context()); err != nil || st.Paused {
		t.Fatal(st, err)
	}
	write(path+".new", `{"billing_paused": true , "x":1}`) // same length
	_ = os.Rename(path+".new", path)
	if st, err := f.State(t.Context()); err != nil || !st.Paused {
		t.Fatalf("replacement not seen: %+v %v", st, err)
	}
}

// FuzzFlagsFile: whatever the file holds, State and Pause return (no
// panic), and a Pause that succeeds is then read back as paused with the
// other keys kept.
func FuzzFlagsFile(f *testing.F) {
	for _, s := range []string{"", "null", "{}", `{"billing_paused":true}`, `{"a":[1,2]}`, "[]", `{"billing_paused":null}`, "\xff"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(dir, "flags.json")
		_ = os.WriteFile(path, content, 0o600)
		ff, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
		_, stateErr := ff.State(t.Context())
		if err := ff.Pause(context.Background(), "fuzz"); err == nil {
			if stateErr != nil {
				t.Fatalf("Pause succeeded on content State refused: %q", content)
			}
			st, err := ff.State(t.Context())
			if err != nil || !st.Paused {
				t.Fatalf("after Pause: %+v %v (content %q)", st, err, content)
			}
		}
	})
}

// TestOpenAIHostileServer: a Retry-After of 999999 s fails the source at
// once (no 277-hour sleep); endless pagination stops at MaxPages; a cost
// of 1e300 is an error, never MinInt64.
func TestOpenAIHostileServer(t *testing.T) {
	p := spendguard.Period{Start: day, End: day.Add(time.Hour)}
	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	var requests atomic.Int64
	mode := "retry"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case "retry":
			w.Header().Set("Retry-After", "999999")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"error":{"message":"slow down"}}`)
		case "endless":
			fmt.Fprint(w, `{"object":"page","data":[],"has_more":true,"next_page":"again"}`)
		case "huge":
			fmt.Fprint(w, `{"object":"page","data":[{"results":[{"amount":{"value":1e300,"currency":"usd"}}]}],"has_more":false}`)
		}
	}))
	defer srv.Close()
	o, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: "sk-admin-x", BaseURL: srv.URL, MaxPages: 20})
	spendguard.SetSleep(o, sleep)
	if _, err := o.Lines(context.Background(), p); err == nil || len(waits) != 0 || requests.Load() != 1 {
		t.Fatalf("Retry-After 999999: err %v, waits %v, %d requests", err, waits, requests.Load())
	}
	mode = "endless"
	requests.Store(0)
	if _, err := o.Lines(context.Background(), p); err == nil || !strings.Contains(err.Error(), "MaxPages") || requests.Load() != 20 {
		t.Fatalf("endless pages: err %v after %d requests", err, requests.Load())
	}
	mode = "huge"
	if lines, err := o.Lines(context.Background(), p); err == nil {
		t.Fatalf("1e300 dollars accepted: %+v", lines)
	}
}

// TestStripeEndlessPages: a server always answering has_more stops at
// MaxPages.
func TestStripeEndlessPages(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/balance" {
			fmt.Fprint(w, `{"object":"balance","available":[],"pending":[]}`)
			return
		}
		n := requests.Add(1)
		fmt.Fprintf(w, `{"object":"list","url":"/v1/balance_transactions","has_more":true,"data":[{"id":"txn_%d","object":"balance_transaction","amount":1,"fee":0,"currency":"usd","type":"charge"}]}`, n)
	}))
	defer srv.Close()
	s, _ := spendguard.NewStripe(spendguard.StripeConfig{Client: stripeClient(srv.URL, stripeKey, 0), MaxPages: 5})
	_, err := s.Lines(context.Background(), spendguard.Period{Start: day, End: day.Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "MaxPages") || requests.Load() != 6 {
		t.Fatalf("err %v after %d list requests", err, requests.Load())
	}
}

// partialSource returns lines and an error.
type partialSource struct{}

func (partialSource) Name() string { return "partial" }
func (partialSource) Lines(context.Context, spendguard.Period) ([]spendguard.Line, error) {
	return []spendguard.Line{{Label: "half", Kind: spendguard.KindCost, Amount: money.New(700, "USD")}}, errors.New("page 2 failed")
}

// TestPartialDataOneRule: lines returned with an error count nowhere, in
// the Guard and in the report alike.
func TestPartialDataOneRule(t *testing.T) {
	src := &fixedSource{name: "api"}
	src.set(100, nil)
	sources := []spendguard.Source{src, partialSource{}}
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: sources, Now: testclock.New(day.Add(12 * time.Hour)).Now, Logger: quietLog})
	c, _ := g.Check(context.Background())
	r := spendguard.BuildReport(context.Background(), sources, spendguard.Period{Start: day, End: day.Add(time.Hour)}, day)
	if c.Spent.Amount != 100 || r.Totals["USD"].Costs.Amount != 100 || c.Complete || r.Complete {
		t.Fatalf("guard spent %v complete %v; report costs %v complete %v", c.Spent, c.Complete, r.Totals["USD"].Costs, r.Complete)
	}
	huge := linesSource{[]spendguard.Line{{Label: "x", Kind: spendguard.KindCost, Amount: money.New(math.MaxInt64, "USD")}}}
	r = spendguard.BuildReport(context.Background(), []spendguard.Source{src, huge}, spendguard.Period{Start: day, End: day.Add(time.Hour)}, day)
	if r.Complete || r.Totals["USD"].Costs.Amount != 100 {
		t.Fatalf("overflowing report: %+v", r.Totals)
	}
}

// TestNewGuardConfig: a configuration mistake is refused when the Guard
// is built, never met during a Check.
func TestNewGuardConfig(t *testing.T) {
	src := &fixedSource{name: "api"}
	ok := []spendguard.Source{src}
	for _, tc := range []struct {
		name string
		cfg  spendguard.GuardConfig
		want string // "" for accepted
	}{
		{"defaults", spendguard.GuardConfig{Sources: ok}, ""},
		{"no sources", spendguard.GuardConfig{}, "Sources is empty"},
		{"a nil source", spendguard.GuardConfig{Sources: []spendguard.Source{src, nil}}, "nil Source"},
		{"negative limit", spendguard.GuardConfig{Sources: ok, Limit: money.New(-1, "USD")}, "must be positive"},
		{"limit without currency", spendguard.GuardConfig{Sources: ok, Limit: money.Money{Amount: 5000}}, "must be positive"},
		{"only 100", spendguard.GuardConfig{Sources: ok, Thresholds: []int{100}}, ""},
		{"unsorted", spendguard.GuardConfig{Sources: ok, Thresholds: []int{100, 25, 75}}, ""},
		{"no thresholds", spendguard.GuardConfig{Sources: ok, Thresholds: []int{}}, "ending at 100"},
		{"not ending at 100", spendguard.GuardConfig{Sources: ok, Thresholds: []int{50, 90}}, "ending at 100"},
		{"above 100", spendguard.GuardConfig{Sources: ok, Thresholds: []int{50, 100, 150}}, "ending at 100"},
		{"zero", spendguard.GuardConfig{Sources: ok, Thresholds: []int{0, 100}}, "positive percentages"},
		{"twice", spendguard.GuardConfig{Sources: ok, Thresholds: []int{50, 100, 50}}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := spendguard.NewGuard(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestReportPeriod: a period that ends before it starts is asked of no
// source and makes the report incomplete (sources would answer it with
// zeros); an empty period, as at midnight, is a complete report of
// nothing.
func TestReportPeriod(t *testing.T) {
	hosting, err := spendguard.NewFixed(spendguard.FixedConfig{Label: "hosting", Monthly: money.New(3000, "USD")})
	if err != nil {
		t.Fatal(err)
	}
	src := &fixedSource{name: "api"}
	src.set(100, nil)
	sources := []spendguard.Source{hosting, src}
	r := spendguard.BuildReport(context.Background(), sources, spendguard.Period{Start: day, End: day.Add(-time.Hour)}, day)
	if r.Complete || len(r.Totals) != 0 || len(r.Sources) != 2 {
		t.Fatalf("inverted period: complete %v, totals %v, sources %d", r.Complete, r.Totals, len(r.Sources))
	}
	for _, s := range r.Sources {
		if len(s.Lines) != 0 || !strings.Contains(s.Err, spendguard.ErrPeriod.Error()) {
			t.Fatalf("inverted period, source %s: lines %v, err %q", s.Name, s.Lines, s.Err)
		}
	}
	r = spendguard.BuildReport(context.Background(), sources, spendguard.Period{Start: day, End: day}, day)
	if !r.Complete || r.Totals["USD"].Costs.Amount != 100 {
		t.Fatalf("empty period: complete %v, totals %v, sources %+v", r.Complete, r.Totals, r.Sources)
	}
}
