package spendguard

import (
	"github.com/levqor/levqor/money"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/levqor/levqor/alert"
)

// Defaults for GuardConfig.
const (
	// DefaultMinForecastElapsed: no forecast before this much of the day
	// has passed; extrapolating the first minutes would be noise.
	DefaultMinForecastElapsed = time.Hour
)

// DefaultThresholds returns the alarm levels in percent of the daily
// limit: 50, 80 and 100 (a new slice each call).
func DefaultThresholds() []int { return []int{50, 80, 100} }

// DefaultDailyLimitCents is the default daily limit: $50.
const DefaultDailyLimitCents = 5000

// DefaultDailyLimit returns the default daily limit, $50.
func DefaultDailyLimit() money.Money { return money.New(DefaultDailyLimitCents, "USD") }

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Sources report today's costs. Required, none nil.
	Sources []Source
	// Limit is the daily spend limit. Default DefaultDailyLimit() ($50).
	Limit money.Money
	// Thresholds are alarm levels in percent, each alerting once per day
	// when crossed: positive, each at most once, the highest 100. Default
	// DefaultThresholds() (50, 80, 100).
	Thresholds []int
	// Pauser is called once when spend reaches 100% of the limit. Optional.
	Pauser Pauser
	// Notifier receives threshold, forecast and source-failure alerts. Optional.
	Notifier alert.Notifier
	// Memory keeps which alerts went out and whether billing was paused
	// across processes, for a Guard made anew by each run (a cron job).
	// One that is also a Locker (SQLMemory) keeps Checks in several
	// processes from overlapping. Optional: nil keeps them in the Guard.
	Memory Memory
	// Location sets where a day begins. Default UTC.
	Location *time.Location
	// MinForecastElapsed delays forecasting. Default DefaultMinForecastElapsed.
	MinForecastElapsed time.Duration
	// Logger receives check results. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// State of one threshold, CloudWatch-style.
type State string

// Threshold states. Unknown means the known spend is below the threshold
// but a source failed, so it cannot be said to be OK.
const (
	StateOK      State = "OK"
	StateAlarm   State = "ALARM"
	StateUnknown State = "UNKNOWN"
)

// ThresholdState is one threshold in a Check.
type ThresholdState struct {
	Percent int   `json:"percent"`
	State   State `json:"state"`
	// Forecast is ALARM when the end-of-day forecast crosses the threshold.
	Forecast State `json:"forecast"`
}

// SourceError is a source that failed during a check.
type SourceError struct {
	Source string `json:"source"`
	Err    string `json:"error"`
}

// Check is the result of one Guard check.
type Check struct {
	Day   string      `json:"day"`
	Spent money.Money `json:"spent"`
	Limit money.Money `json:"limit"`
	// Complete is false when a source failed: Spent is then a lower bound.
	Complete bool          `json:"complete"`
	Failed   []SourceError `json:"failed_sources,omitempty"`
	Percent  float64       `json:"percent"`
	// Forecast extrapolates Spent to the end of the day at today's rate;
	// zero until MinForecastElapsed has passed.
	Forecast   money.Money      `json:"forecast"`
	Thresholds []ThresholdState `json:"thresholds"`
	Paused     bool             `json:"paused"`
}

// Guard checks daily spend against a limit.
type Guard struct {
	cfg GuardConfig

	mu          sync.Mutex
	day         string
	alarmed     map[int]bool // thresholds alerted today
	forecast    map[int]bool
	unknown     bool   // a source-failure alert is out
	paused      string // day billing was paused (the Pauser succeeded)
	pauseFailed string // day a failed pause was alerted
}

// NewGuard validates cfg.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("spendguard: GuardConfig.Sources is empty")
	}
	if slices.Contains(cfg.Sources, nil) {
		return nil, errors.New("spendguard: GuardConfig.Sources holds a nil Source")
	}
	if cfg.Limit == (money.Money{}) {
		cfg.Limit = DefaultDailyLimit()
	}
	if cfg.Limit.Amount <= 0 || !money.ValidCurrency(cfg.Limit.Currency) {
		return nil, fmt.Errorf("spendguard: Limit %v must be positive with a currency", cfg.Limit)
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds()
	}
	cfg.Thresholds = slices.Sorted(slices.Values(cfg.Thresholds))
	if len(cfg.Thresholds) == 0 || cfg.Thresholds[0] <= 0 || cfg.Thresholds[len(cfg.Thresholds)-1] != 100 {
		return nil, errors.New("spendguard: Thresholds must be positive percentages ending at 100")
	}
	if len(slices.Compact(slices.Clone(cfg.Thresholds))) != len(cfg.Thresholds) {
		return nil, fmt.Errorf("spendguard: Thresholds %v name a percentage twice", cfg.Thresholds)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	switch {
	case cfg.MinForecastElapsed == 0:
		cfg.MinForecastElapsed = DefaultMinForecastElapsed
	case cfg.MinForecastElapsed < 0:
		return nil, fmt.Errorf("spendguard: MinForecastElapsed %v is negative", cfg.MinForecastElapsed)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{cfg: cfg}, nil
}

// Check measures today's spend, updates threshold states, alerts once per
// crossing and pauses billing at 100%. A failing source makes the check
// incomplete: thresholds the known spend has not crossed are UNKNOWN,
// never OK. A source that returns lines and an error counts as failed and
// contributes nothing (BuildReport applies the same rule); so does one
// whose costs overflow.
//
// A pause that fails is not recorded: Check returns the error, Paused
// stays false, a critical alert goes out (once a day), and the next Check
// tries to pause again.
func (g *Guard) Check(ctx context.Context) (Check, error) {
	now := g.cfg.Now().In(g.cfg.Location)
	start, end := DayBounds(now, g.cfg.Location)
	c := Check{Day: now.Format(time.DateOnly), Limit: g.cfg.Limit, Spent: money.New(0, g.cfg.Limit.Currency), Complete: true}
	g.measure(ctx, &c, Period{start, now})
	c.Percent = c.Spent.Percent(g.cfg.Limit)
	if elapsed := now.Sub(start); elapsed >= g.cfg.MinForecastElapsed && elapsed > 0 {
		if f, err := c.Spent.MulDiv(int64(end.Sub(start)/time.Millisecond), max(1, int64(elapsed/time.Millisecond))); err == nil {
			c.Forecast = f
		}
	}
	var errs []error
	if l, ok := g.cfg.Memory.(Locker); ok {
		// Held from the load to the save: another process's Check waits,
		// then sees what this one alerted. Without it the check still
		// alerts: a repeated alert beats a missed one.
		if unlock, err := l.Lock(ctx); err != nil {
			errs = append(errs, err)
		} else {
			defer unlock()
		}
	}
	if g.cfg.Memory != nil {
		// Loaded before deciding, saved after: a run that fails to save
		// alerts again next time rather than never.
		m, err := g.cfg.Memory.Load(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			g.mu.Lock()
			g.restore(m)
			g.mu.Unlock()
		}
	}
	alerts, needPause := g.evaluate(&c)
	if needPause {
		a, err := g.pause(ctx, &c)
		if err != nil {
			errs = append(errs, err)
		}
		alerts = append(alerts, a...)
	}
	for _, a := range alerts {
		a.Time = now
		if g.cfg.Notifier != nil {
			if err := g.cfg.Notifier.Notify(ctx, a); err != nil {
				errs = append(errs, fmt.Errorf("spendguard: alert: %w", err))
			}
		}
	}
	if g.cfg.Memory != nil {
		g.mu.Lock()
		m := g.memo()
		g.mu.Unlock()
		if err := g.cfg.Memory.Save(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	g.cfg.Logger.InfoContext(ctx, "spendguard: check", "day", c.Day, "spent", c.Spent.String(), "limit", g.cfg.Limit.String(),
		"percent", strconv.FormatFloat(c.Percent, 'f', 1, 64), "complete", c.Complete, "paused", c.Paused, "forecast", c.Forecast.String())
	return c, errors.Join(errs...)
}

// measure adds every source's costs for p to c.Spent; a source that fails,
// reports a cost in another currency or overflows is recorded in c.Failed.
func (g *Guard) measure(ctx context.Context, c *Check, p Period) {
	for _, src := range g.cfg.Sources {
		sum, err := sourceCost(ctx, src, p, g.cfg.Limit.Currency)
		if err == nil {
			var total money.Money
			if total, err = c.Spent.Add(sum); err == nil {
				c.Spent = total
				continue
			}
		}
		c.Complete = false
		c.Failed = append(c.Failed, SourceError{Source: src.Name(), Err: err.Error()})
	}
}

// sourceCost sums one source's cost lines in currency, checked.
func sourceCost(ctx context.Context, src Source, p Period, currency string) (money.Money, error) {
	lines, err := src.Lines(ctx, p)
	if err != nil {
		return money.Money{}, err
	}
	sum := money.New(0, currency)
	for _, l := range lines {
		if l.Kind != KindCost {
			continue
		}
		if l.Amount.Currency != currency {
			return money.Money{}, fmt.Errorf("cost %q in %s, limit in %s", l.Label, l.Amount.Currency, currency)
		}
		if sum, err = sum.Add(l.Amount); err != nil {
			return money.Money{}, fmt.Errorf("cost %q: %w", l.Label, err)
		}
	}
	return sum, nil
}

// evaluate sets c's threshold states and returns the alerts due and
// whether billing must be paused now.
func (g *Guard) evaluate(c *Check) ([]alert.Alert, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.day != c.Day { // a new day: every threshold starts OK again
		g.day, g.alarmed, g.forecast = c.Day, map[int]bool{}, map[int]bool{}
	}
	var alerts []alert.Alert
	for _, t := range g.cfg.Thresholds {
		ts := ThresholdState{Percent: t, State: StateOK, Forecast: StateOK}
		switch {
		case c.Percent >= float64(t):
			ts.State = StateAlarm
			if !g.alarmed[t] {
				g.alarmed[t] = true
				alerts = append(alerts, alert.SpendBreach(c.Day, c.Spent.String(), g.cfg.Limit.String(), t))
			}
		case !c.Complete:
			ts.State = StateUnknown
		}
		if c.Forecast.Percent(g.cfg.Limit) >= float64(t) {
			ts.Forecast = StateAlarm
			if t == 100 && ts.State != StateAlarm && !g.forecast[t] {
				g.forecast[t] = true
				alerts = append(alerts, alert.Alert{
					Severity: alert.SeverityWarning, Key: "spend-forecast|" + c.Day,
					Title:  "Daily spend forecast exceeds the limit",
					Fields: []alert.Field{{Key: "Spent so far", Value: c.Spent.String()}, {Key: "Forecast", Value: c.Forecast.String()}, {Key: "Limit", Value: g.cfg.Limit.String()}},
				})
			}
		}
		c.Thresholds = append(c.Thresholds, ts)
	}
	if !c.Complete && !g.unknown {
		g.unknown = true
		a := alert.Alert{Severity: alert.SeverityWarning, Title: "Spend guard cannot see all costs", Key: "spend-unknown",
			Message: "Spend is unknown, not zero: a cost source is failing."}
		for _, f := range c.Failed {
			a.Fields = append(a.Fields, alert.Field{Key: f.Source, Value: f.Err})
		}
		alerts = append(alerts, a)
	} else if c.Complete {
		g.unknown = false
	}
	c.Paused = g.paused == c.Day
	return alerts, c.Percent >= 100 && !c.Paused
}

// pause calls the Pauser and records success only; a failure is returned,
// alerted once a day, and retried by the next Check.
func (g *Guard) pause(ctx context.Context, c *Check) ([]alert.Alert, error) {
	if g.cfg.Pauser == nil {
		return nil, nil
	}
	reason := "daily spend " + c.Spent.String() + " reached the limit " + g.cfg.Limit.String() + " on " + c.Day
	err := g.cfg.Pauser.Pause(ctx, reason)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.paused, g.pauseFailed = c.Day, ""
		c.Paused = true
		return nil, nil
	}
	var alerts []alert.Alert
	if g.pauseFailed != c.Day {
		g.pauseFailed = c.Day
		alerts = append(alerts, alert.Alert{Severity: alert.SeverityCritical, Title: "Spend limit reached but billing could NOT be paused",
			Message: err.Error() + " (retried on every check)", Key: "spend-pause-failed|" + c.Day})
	}
	return alerts, fmt.Errorf("spendguard: pause billing: %w", err)
}

// DayBounds returns the first instant of t's calendar day in loc and the
// first instant of the next day. It is correct in every IANA zone,
// including those where a DST change skips midnight (the day then starts
// at 01:00) or repeats it.
func DayBounds(t time.Time, loc *time.Location) (start, end time.Time) {
	t = t.In(loc)
	y, m, d := t.Date()
	start = firstInstant(y, m, d, t, loc)
	ny, nm, nd := time.Date(y, m, d+1, 12, 0, 0, 0, loc).Date()
	end = firstInstant(ny, nm, nd, time.Date(ny, nm, nd, 12, 0, 0, 0, loc), loc)
	return start, end
}

// firstInstant finds, to the second, the earliest instant whose local date
// is (y, m, d), searching back from at (which is on that date).
func firstInstant(y int, m time.Month, d int, at time.Time, loc *time.Location) time.Time {
	onOrAfter := func(x time.Time) bool {
		xy, xm, xd := x.In(loc).Date()
		if xy != y {
			return xy > y
		}
		if xm != m {
			return xm > m
		}
		return xd >= d
	}
	// Local midnight, when it exists, is the answer; time.Date may instead
	// return an instant on the previous day (midnight skipped by DST).
	if c := time.Date(y, m, d, 0, 0, 0, 0, loc); onOrAfter(c) && !onOrAfter(c.Add(-time.Second)) {
		return c
	}
	lo, hi := at.Add(-50*time.Hour).Unix(), at.Unix() // lo before the day, hi on it
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if onOrAfter(time.Unix(mid, 0)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Unix(hi, 0).In(loc)
}
