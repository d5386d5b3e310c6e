package slo_test

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/slo"
)

func newTracker(t *testing.T, clk *testclock.Clock, cfg slo.TrackerConfig) *slo.Tracker {
	t.Helper()
	cfg.Now = clk.Now
	cfg.EvalInterval = -1
	tr, err := slo.NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// traffic records perMinute events a minute for the given minutes, with
// errors spread evenly at errRate, advancing the clock a minute at a time.
func traffic(tr *slo.Tracker, clk *testclock.Clock, minutes, perMinute int, errRate float64) {
	var owed float64
	for range minutes {
		owed += errRate * float64(perMinute)
		bad := int(owed)
		owed -= float64(bad)
		for i := range perMinute {
			tr.Record(i >= bad)
		}
		clk.Advance(time.Minute)
	}
}

func firing(st slo.Status) []int {
	var out []int
	for i, br := range st.BurnRates {
		if br.Firing {
			out = append(out, i)
		}
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBurnRateWindows drives each window pair on a simulated clock: three
// clean days, then an incident shaped to trip one pair.
func TestBurnRateWindows(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minutes int
		errRate float64
		want    []int // indexes into DefaultBurnWindows
	}{
		{"fast burn: 2% for 1h pages on 1h/5m", 60, 0.02, []int{0}},
		{"0.8% for 6h pages on 6h/30m", 360, 0.008, []int{1}},
		{"0.4% for 1d tickets on 1d/2h and 3d/6h", 1440, 0.004, []int{2, 3}},
		{"0.15% for 3d tickets on 3d/6h", 4320, 0.0015, []int{3}},
		{"0.05% never fires", 4320, 0.0005, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(start)
			al := &alerts{}
			tr := newTracker(t, clk, slo.TrackerConfig{Name: "api", Notifier: al})
			traffic(tr, clk, 3*1440, 100, 0)
			if st := tr.Evaluate(context.Background()); len(firing(st)) != 0 {
				t.Fatalf("clean traffic fires %v", firing(st))
			}
			traffic(tr, clk, tc.minutes, 100, tc.errRate)
			st := tr.Evaluate(context.Background())
			if got := firing(st); !equal(got, tc.want) {
				t.Fatalf("firing %v, want %v; burn rates %+v", got, tc.want, st.BurnRates)
			}
			if n := len(al.list()); n != len(tc.want) {
				t.Fatalf("%d alerts for %d firing pairs", n, len(tc.want))
			}
			for i, a := range al.list() {
				if a.Severity != slo.DefaultBurnWindows()[tc.want[i]].Severity {
					t.Fatalf("alert %+v has the wrong severity", a)
				}
			}
		})
	}
}

func TestBurnRateShortWindowResets(t *testing.T) {
	clk := testclock.New(start)
	al := &alerts{}
	tr := newTracker(t, clk, slo.TrackerConfig{Notifier: al})
	traffic(tr, clk, 3*1440, 100, 0)
	traffic(tr, clk, 60, 100, 0.03)
	if got := firing(tr.Evaluate(context.Background())); !equal(got, []int{0}) {
		t.Fatalf("firing %v", got)
	}
	tr.Evaluate(context.Background()) // still firing: no second alert
	if n := len(al.list()); n != 1 {
		t.Fatalf("%d alerts, want 1 (alerts on change only)", n)
	}
	// The incident ends: the 1h window still burns, the 5m one is clean.
	traffic(tr, clk, 6, 100, 0)
	st := tr.Evaluate(context.Background())
	if got := firing(st); len(got) != 0 || st.BurnRates[0].Long < 14.4 {
		t.Fatalf("firing %v with long burn %v", got, st.BurnRates[0].Long)
	}
	a := al.list()
	if len(a) != 2 || a[1].Severity != alert.SeveritySuccess {
		t.Fatalf("alerts %+v, want a resolution", a)
	}
}

func TestLowTrafficGuard(t *testing.T) {
	clk := testclock.New(start)
	al := &alerts{}
	tr := newTracker(t, clk, slo.TrackerConfig{MinEvents: 100, Notifier: al})
	traffic(tr, clk, 60, 1, 0.5) // 60 events in the hour, half bad
	st := tr.Evaluate(context.Background())
	if len(firing(st)) != 0 || !st.BurnRates[0].SuppressedLowVol || len(al.list()) != 0 {
		t.Fatalf("low traffic fired: %+v", st.BurnRates[0])
	}
	traffic(tr, clk, 60, 2, 0.5)
	if got := firing(tr.Evaluate(context.Background())); len(got) == 0 {
		t.Fatal("enough traffic did not fire")
	}
}

func TestBudgetAndReset(t *testing.T) {
	clk := testclock.New(start)
	tr := newTracker(t, clk, slo.TrackerConfig{})
	traffic(tr, clk, 1000, 1000, 0.0005) // 1M events, 500 bad
	st := tr.Status()
	if st.Events != 1_000_000 || math.Abs(st.SLI-0.9995) > 1e-9 || math.Abs(st.BudgetRemaining-0.5) > 1e-6 {
		t.Fatalf("status %+v", st)
	}
	// Events older than the period fall out of the budget.
	clk.Advance(31 * 24 * time.Hour)
	if st := tr.Status(); st.Events != 0 || st.BudgetRemaining != 1 {
		t.Fatalf("after the period: %+v", st)
	}
	traffic(tr, clk, 10, 100, 0.5)
	tr.Reset()
	if st := tr.Status(); st.Events != 0 || st.SLI != 1 {
		t.Fatalf("after Reset: %+v", st)
	}
}

func TestPercentiles(t *testing.T) {
	clk := testclock.New(start)
	tr := newTracker(t, clk, slo.TrackerConfig{})
	if _, ok := tr.Percentiles(0.5); ok {
		t.Fatal("percentile without data")
	}
	for i := 1; i <= 1000; i++ {
		tr.Observe(time.Duration(i)*time.Millisecond, true)
	}
	p, ok := tr.Percentiles(0.5, 0.95, 0.99)
	for i, want := range []time.Duration{500 * time.Millisecond, 950 * time.Millisecond, 990 * time.Millisecond} {
		if !ok || math.Abs(float64(p[i]-want))/float64(want) > 0.25 {
			t.Errorf("p = %v, want within 25%% of %v", p[i], want)
		}
	}
	clk.Advance(2 * time.Hour)
	if _, ok := tr.Percentiles(0.5); ok {
		t.Fatal("latencies older than the window still counted")
	}
}

// TestPercentilesAccuracy: against exact quantiles of random latencies
// spread over the documented range (1µs to about 65 minutes), every
// estimate is within 25%.
func TestPercentilesAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	lo, hi := math.Log(float64(slo.MinLatency)), math.Log(float64(slo.MaxLatency))
	for trial := range 40 {
		clk := testclock.New(start)
		tr := newTracker(t, clk, slo.TrackerConfig{})
		// Each trial spans a random part of the range, down to sub-ms and up to an hour.
		a := lo + rng.Float64()*(hi-lo)
		b := a + rng.Float64()*(hi-a)
		vals := make([]time.Duration, 500+rng.IntN(2000))
		for i := range vals {
			vals[i] = time.Duration(math.Exp(a + rng.Float64()*(b-a)))
			tr.Observe(vals[i], true)
		}
		slices.Sort(vals)
		qs := []float64{0.01, 0.5, 0.9, 0.99, 1}
		got, _ := tr.Percentiles(qs...)
		for i, q := range qs {
			exact := vals[max(0, int(math.Ceil(q*float64(len(vals))))-1)]
			if rel := math.Abs(float64(got[i]-exact)) / float64(exact); rel > 0.25 {
				t.Fatalf("trial %d q%v: got %v, exact %v (%.0f%% off)", trial, q, got[i], exact, rel*100)
			}
		}
	}
}

// TestTrackerBefore1970: any time.Time is valid input, a zero time too.
func TestTrackerBefore1970(t *testing.T) {
	for _, at := range []time.Time{{}, time.Date(1969, 12, 31, 23, 59, 30, 0, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)} {
		clk := testclock.New(at)
		tr := newTracker(t, clk, slo.TrackerConfig{})
		tr.Observe(time.Millisecond, true)
		tr.Observe(time.Millisecond, false)
		clk.Advance(time.Minute)
		tr.Record(true)
		if st := tr.Status(); st.Events != 3 {
			t.Fatalf("%v: %d events", at, st.Events)
		}
		if p, ok := tr.Percentiles(0.5); !ok || p[0] <= 0 {
			t.Fatalf("%v: percentiles %v %v", at, p, ok)
		}
	}
}

func TestTrackerMiddleware(t *testing.T) {
	clk := testclock.New(start)
	tr := newTracker(t, clk, slo.TrackerConfig{LatencyThreshold: 300 * time.Millisecond})
	srv := httptest.NewServer(tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			w.WriteHeader(500)
		case "/103-then-500":
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(500)
		case "/404":
			http.NotFound(w, r)
		case "/slow":
			clk.Advance(time.Second)
		}
		_, _ = io.WriteString(w, "x")
	})))
	defer srv.Close()
	for _, p := range []string{"/ok", "/ok", "/404", "/500", "/slow", "/103-then-500", "/ok", "/ok", "/ok", "/ok"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	st := tr.Status()
	if st.Events != 10 || math.Abs(st.SLI-0.7) > 1e-9 {
		t.Fatalf("events %d SLI %v, want 10 and 0.7 (404 is good; 500, 103 then 500, and slow are bad)", st.Events, st.SLI)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	clk := testclock.New(start)
	tr := newTracker(t, clk, slo.TrackerConfig{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				tr.Observe(time.Millisecond, (i+g)%10 != 0)
			}
		})
	}
	wg.Wait()
	if st := tr.Status(); st.Events != 80_000 || math.Abs(st.SLI-0.9) > 1e-9 {
		t.Fatalf("events %d SLI %v", st.Events, st.SLI)
	}
}

func TestTrackerConfig(t *testing.T) {
	for name, cfg := range map[string]slo.TrackerConfig{
		"objective 1":    {Objective: 1},
		"objective 1.5":  {Objective: 1.5},
		"short period":   {Period: time.Minute},
		"bad window":     {BurnWindows: []slo.BurnWindow{{Long: time.Minute, Short: time.Hour, Factor: 1}}},
		"seconds window": {BurnWindows: []slo.BurnWindow{{Long: time.Hour, Short: 30 * time.Second, Factor: 1}}},
		// Memory is allocated up front: sizes past the bounds are refused,
		// not a makeslice panic or gigabytes.
		"period past max": {Period: slo.MaxPeriod + time.Hour},
		"period max int":  {Period: math.MaxInt64},
		"window past max": {BurnWindows: []slo.BurnWindow{{Long: slo.MaxPeriod + time.Minute, Short: time.Hour, Factor: 1}}},
		"window max int":  {BurnWindows: []slo.BurnWindow{{Long: math.MaxInt64 / time.Minute * time.Minute, Short: time.Hour, Factor: 1}}},
		"latency window":  {LatencyWindow: slo.MaxLatencyWindow + time.Minute},
	} {
		if _, err := slo.NewTracker(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	at, err := slo.NewTracker(slo.TrackerConfig{EvalInterval: -1, Period: slo.MaxPeriod, LatencyWindow: slo.MaxLatencyWindow,
		BurnWindows: []slo.BurnWindow{{Long: slo.MaxPeriod, Short: time.Hour, Factor: 1}}})
	if err != nil {
		t.Fatalf("the bounds themselves: %v", err)
	}
	_ = at.Close()
	tr, err := slo.NewTracker(slo.TrackerConfig{EvalInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tr.Record(true)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecordAtAndObserveAt: an event is counted in the minute it is given,
// not the tracker's clock's: one older than the period or the latency
// window counts nowhere.
func TestRecordAtAndObserveAt(t *testing.T) {
	clk := testclock.New(start)
	tr := newTracker(t, clk, slo.TrackerConfig{Objective: 0.99, Period: 24 * time.Hour, LatencyWindow: 5 * time.Minute})
	now := clk.Now()
	tr.RecordAt(now.Add(-25*time.Hour), false)
	tr.ObserveAt(now.Add(-10*time.Minute), time.Second, false)
	if st := tr.Status(); st.Events != 1 || st.SLI != 0 {
		t.Fatalf("an event before the period counted, or one inside it not: %+v", st)
	}
	if _, ok := tr.Percentiles(0.5); ok {
		t.Fatal("a latency before the latency window counted")
	}
	tr.RecordAt(now, true)
	tr.ObserveAt(now.Add(-time.Minute), 2*time.Millisecond, true)
	if st := tr.Status(); st.Events != 3 || math.Abs(st.SLI-2.0/3) > 1e-9 {
		t.Fatalf("after two good events: %+v", st)
	}
	ds, ok := tr.Percentiles(0.5)
	if !ok || ds[0] < time.Millisecond || ds[0] > 3*time.Millisecond {
		t.Fatalf("median latency %v, %v; want about 2ms", ds, ok)
	}
}
