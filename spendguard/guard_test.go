package spendguard_test

import (
	"github.com/levqor/levqor/money"

	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/spendguard"
)

// fixedSource reports a settable cost, or an error.
type fixedSource struct {
	name string
	mu   sync.Mutex
	cost money.Money
	err  error
}

func (f *fixedSource) Name() string { return f.name }
func (f *fixedSource) Lines(context.Context, spendguard.Period) ([]spendguard.Line, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return []spendguard.Line{{Label: f.name, Kind: spendguard.KindCost, Amount: f.cost}}, nil
}
func (f *fixedSource) set(cents int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cost, f.err = money.Money{Amount: cents, Currency: "USD"}, err
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
func (a *alerts) titles() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, x := range a.got {
		out = append(out, x.Title)
	}
	return out
}

var day = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func TestThresholdsAlertOncePerCrossing(t *testing.T) {
	src := &fixedSource{name: "api"}
	clk := testclock.New(day.Add(20 * time.Hour)) // late: forecast stays close to actual
	al := &alerts{}
	pauses := 0
	g, err := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: []spendguard.Source{src}, Notifier: al, Now: clk.Now,
		Pauser: spendguard.PauseFunc(func(context.Context, string) error { pauses++; return nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		cents     int64
		newAlerts int
		states    string
	}{
		{1500, 0, "OK OK OK"},
		{2600, 1, "ALARM OK OK"},
		{3000, 0, "ALARM OK OK"},
		{4100, 1, "ALARM ALARM OK"},
		{5000, 1, "ALARM ALARM ALARM"},
		{6500, 0, "ALARM ALARM ALARM"},
	}
	total := 0
	for i, s := range steps {
		src.set(s.cents, nil)
		c, err := g.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, ts := range c.Thresholds {
			states = append(states, string(ts.State))
		}
		total += s.newAlerts
		if strings.Join(states, " ") != s.states || len(al.titles()) != total {
			t.Fatalf("step %d ($%d.%02d): states %v, %d alerts %v; want %s and %d", i, s.cents/100, s.cents%100, states, len(al.titles()), al.titles(), s.states, total)
		}
	}
	if pauses != 1 {
		t.Fatalf("paused %d times, want once", pauses)
	}
	// A new day: thresholds start OK and alert again; billing stays paused
	// until an operator resumes (the Guard never does), so no second pause.
	clk.Set(day.Add(24*time.Hour + 20*time.Hour))
	src.set(2600, nil)
	c, _ := g.Check(ctx)
	if c.Thresholds[0].State != spendguard.StateAlarm || c.Thresholds[2].State != spendguard.StateOK || len(al.titles()) != total+1 {
		t.Fatalf("next day: %+v, alerts %v", c.Thresholds, al.titles())
	}
}

func TestForecast(t *testing.T) {
	src := &fixedSource{name: "api"}
	clk := testclock.New(day.Add(30 * time.Minute))
	al := &alerts{}
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Notifier: al, Now: clk.Now})
	ctx := context.Background()
	src.set(1000, nil)
	if c, _ := g.Check(ctx); c.Forecast.Amount != 0 {
		t.Fatalf("forecast after 30 minutes: %v", c.Forecast)
	}
	clk.Set(day.Add(6 * time.Hour))
	src.set(1500, nil) // $15 in 6h → $60 by midnight
	c, _ := g.Check(ctx)
	if c.Forecast.Amount != 6000 || c.Thresholds[2].State != spendguard.StateOK || c.Thresholds[2].Forecast != spendguard.StateAlarm {
		t.Fatalf("forecast %v, states %+v", c.Forecast, c.Thresholds)
	}
	if got := al.titles(); len(got) != 1 || !strings.Contains(got[0], "forecast") {
		t.Fatalf("alerts %v", got)
	}
	g.Check(ctx)
	if len(al.titles()) != 1 {
		t.Fatal("forecast alerted twice in one day")
	}
}

func TestFailingSourceIsNeverWithinLimit(t *testing.T) {
	ok := &fixedSource{name: "hosting"}
	broken := &fixedSource{name: "openai"}
	ok.set(1000, nil)
	broken.set(0, errors.New("HTTP 500"))
	al := &alerts{}
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{ok, broken}, Notifier: al, Now: func() time.Time { return day.Add(12 * time.Hour) }})
	c, _ := g.Check(context.Background())
	if c.Complete || len(c.Failed) != 1 || c.Failed[0].Source != "openai" {
		t.Fatalf("check %+v", c)
	}
	for _, ts := range c.Thresholds {
		if ts.State == spendguard.StateOK {
			t.Fatalf("threshold %d reads OK with a source missing", ts.Percent)
		}
	}
	if titles := al.titles(); len(titles) != 1 || !strings.Contains(titles[0], "cannot see all costs") {
		t.Fatalf("alerts %v", titles)
	}
	// Known spend over a threshold is still an ALARM.
	ok.set(3000, nil)
	c, _ = g.Check(context.Background())
	if c.Thresholds[0].State != spendguard.StateAlarm || c.Thresholds[1].State != spendguard.StateUnknown {
		t.Fatalf("%+v", c.Thresholds)
	}
	// A cost in another currency is not silently added or dropped.
	eur := &fixedSource{name: "eu-hosting"}
	eur.cost = money.Money{Amount: 100, Currency: "EUR"}
	g2, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{eur}})
	if c, _ := g2.Check(context.Background()); c.Complete || !strings.Contains(c.Failed[0].Err, "EUR") {
		t.Fatalf("%+v", c)
	}
}

func TestGuardConfig(t *testing.T) {
	src := &fixedSource{name: "x"}
	for name, cfg := range map[string]spendguard.GuardConfig{
		"no sources":       {},
		"negative limit":   {Sources: []spendguard.Source{src}, Limit: money.Money{Amount: -1, Currency: "USD"}},
		"no 100 threshold": {Sources: []spendguard.Source{src}, Thresholds: []int{50, 80}},
	} {
		if _, err := spendguard.NewGuard(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMoney(t *testing.T) {
	for _, tc := range []struct {
		in, cur string
		want    int64
		str     string
		ok      bool
	}{
		{"50", "usd", 5000, "$50.00", true},
		{"49.99", "USD", 4999, "$49.99", true},
		{"0.5", "EUR", 50, "0.50 EUR", true},
		{"1000", "JPY", 1000, "1000 JPY", true},
		{"1.5", "JPY", 0, "", false},
		{"1.234", "USD", 0, "", false},
		{"abc", "USD", 0, "", false},
		{"-5", "USD", -500, "-$5.00", true},
		{"5", "dollars", 0, "", false},
	} {
		m, err := money.Parse(tc.in, tc.cur)
		if (err == nil) != tc.ok || m.Amount != tc.want || (tc.ok && m.String() != tc.str) {
			t.Errorf("money.Parse(%q, %q) = %v (%s), %v", tc.in, tc.cur, m.Amount, m, err)
		}
	}
}

func TestFixedProrates(t *testing.T) {
	f, _ := spendguard.NewFixed(spendguard.FixedConfig{Label: "hosting", Monthly: money.Money{Amount: 30000, Currency: "USD"}})
	lines, _ := f.Lines(context.Background(), spendguard.Period{Start: day, End: day.Add(24 * time.Hour)})
	if lines[0].Amount.Amount != 1000 { // November has 30 days
		t.Fatalf("one day of $300/month = %v", lines[0].Amount)
	}
	lines, _ = f.Lines(context.Background(), spendguard.Period{Start: day, End: day.Add(6 * time.Hour)})
	if lines[0].Amount.Amount != 250 {
		t.Fatalf("6h = %v", lines[0].Amount)
	}
}

// TestMemoryAcrossRuns: a Guard made anew for every check (a cron job),
// remembering through a MemoryFile, alerts and pauses exactly as one
// long-lived Guard does: once per crossing, one pause, again the next day.
func TestMemoryAcrossRuns(t *testing.T) {
	src := &fixedSource{name: "api"}
	clk := testclock.New(day.Add(20 * time.Hour))
	al := &alerts{}
	pauses := 0
	path := filepath.Join(t.TempDir(), "spend-guard.json")
	run := func() spendguard.Check {
		t.Helper()
		mem, err := spendguard.NewMemoryFile(spendguard.MemoryFileConfig{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		g, err := spendguard.NewGuard(spendguard.GuardConfig{
			Sources: []spendguard.Source{src}, Notifier: al, Now: clk.Now, Memory: mem,
			Pauser: spendguard.PauseFunc(func(context.Context, string) error { pauses++; return nil }),
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := g.Check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	total := 0
	for i, s := range []struct {
		cents     int64
		newAlerts int
	}{{1500, 0}, {2600, 1}, {3000, 0}, {4100, 1}, {5000, 1}, {6500, 0}, {6500, 0}} {
		src.set(s.cents, nil)
		c := run()
		total += s.newAlerts
		if len(al.titles()) != total {
			t.Fatalf("run %d ($%d.%02d): %d alerts %v, want %d", i, s.cents/100, s.cents%100, len(al.titles()), al.titles(), total)
		}
		if s.cents >= 5000 && !c.Paused {
			t.Fatalf("run %d: not reported paused", i)
		}
	}
	if pauses != 1 {
		t.Fatalf("paused %d times, want once", pauses)
	}
	clk.Set(day.Add(24*time.Hour + 20*time.Hour))
	src.set(2600, nil)
	if run(); len(al.titles()) != total+1 {
		t.Fatalf("next day: alerts %v", al.titles())
	}
}

// TestMemoryFileDamaged: a record that is not a Memo is reported, the
// check still alerts (repeating an alert beats missing one), and the file
// is written whole again.
func TestMemoryFileDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spend-guard.json")
	if err := os.WriteFile(path, []byte(`["not", "a memo"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	mem, err := spendguard.NewMemoryFile(spendguard.MemoryFileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	src := &fixedSource{name: "api"}
	src.set(2600, nil)
	al := &alerts{}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{src}, Notifier: al, Memory: mem,
		Now: testclock.New(day.Add(20 * time.Hour)).Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "memory file") {
		t.Fatalf("check with a damaged memory: %v", err)
	}
	if len(al.titles()) != 1 {
		t.Fatalf("alerts %v, want the 50%% one", al.titles())
	}
	m, err := mem.Load(context.Background())
	if err != nil || m.Day != "2026-11-25" || len(m.Alarmed) != 1 || m.Alarmed[0] != 50 {
		t.Fatalf("memory after the check: %+v, %v", m, err)
	}
	if _, err := spendguard.NewMemoryFile(spendguard.MemoryFileConfig{}); err == nil {
		t.Fatal("a MemoryFile without a path was accepted")
	}
}
