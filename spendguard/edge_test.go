package spendguard_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
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
