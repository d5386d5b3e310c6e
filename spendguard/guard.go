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

// DefaultThresholds are the alarm levels in percent of the daily limit.
var DefaultThresholds = []int{50, 80, 100}

// DefaultDailyLimit is $50, the seed system's DAILY_SPEND_LIMIT.
var DefaultDailyLimit = money.New(5000, "USD")

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Sources report today's costs. Required.
	Sources []Source
	// Limit is the daily spend limit. Default DefaultDailyLimit ($50).
	Limit money.Money
	// Thresholds are alarm levels in percent, each alerting once per day
	// when crossed. Default DefaultThresholds (50, 80, 100).
	Thresholds []int
	// Pauser is called once when spend reaches 100% of the limit. Optional.
	Pauser Pauser
	// Notifier receives threshold, forecast and source-failure alerts. Optional.
	Notifier alert.Notifier
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

	mu       sync.Mutex
	day      string
	alarmed  map[int]bool // thresholds alerted today
	forecast map[int]bool
	unknown  bool // a source-failure alert is out
	paused   string
}

// NewGuard validates cfg.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("spendguard: GuardConfig.Sources is empty")
	}
	if cfg.Limit == (money.Money{}) {
		cfg.Limit = DefaultDailyLimit
	}
	if cfg.Limit.Amount <= 0 || len(cfg.Limit.Currency) != 3 {
		return nil, fmt.Errorf("spendguard: Limit %v must be positive with a currency", cfg.Limit)
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds
	}
	cfg.Thresholds = slices.Sorted(slices.Values(cfg.Thresholds))
	if len(cfg.Thresholds) == 0 || cfg.Thresholds[0] <= 0 || cfg.Thresholds[len(cfg.Thresholds)-1] != 100 {
		return nil, errors.New("spendguard: Thresholds must be positive percentages ending at 100")
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MinForecastElapsed == 0 {
		cfg.MinForecastElapsed = DefaultMinForecastElapsed
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
// never OK.
func (g *Guard) Check(ctx context.Context) (Check, error) {
	now := g.cfg.Now().In(g.cfg.Location)
	y, m, d := now.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, g.cfg.Location)
	end := start.AddDate(0, 0, 1)
	c := Check{Day: start.Format("2006-01-02"), Limit: g.cfg.Limit, Spent: money.New(0, g.cfg.Limit.Currency), Complete: true}
	for _, src := range g.cfg.Sources {
		lines, err := src.Lines(ctx, Period{start, now})
		if err == nil {
			var sum int64
			for _, l := range lines {
				if l.Kind != KindCost {
					continue
				}
				if l.Amount.Currency != g.cfg.Limit.Currency {
					err = fmt.Errorf("cost %q in %s, limit in %s", l.Label, l.Amount.Currency, g.cfg.Limit.Currency)
					break
				}
				sum += l.Amount.Amount
			}
			if err == nil {
				c.Spent.Amount += sum
				continue
			}
		}
		c.Complete = false
		c.Failed = append(c.Failed, SourceError{Source: src.Name(), Err: err.Error()})
	}
	c.Percent = c.Spent.Percent(g.cfg.Limit)
	if elapsed := now.Sub(start); elapsed >= g.cfg.MinForecastElapsed {
		day := end.Sub(start)
		c.Forecast = money.New(int64(float64(c.Spent.Amount)*float64(day)/float64(elapsed)), c.Spent.Currency)
	}

	g.mu.Lock()
	if g.day != c.Day { // a new day: every threshold starts OK again
		g.day, g.alarmed, g.forecast = c.Day, map[int]bool{}, map[int]bool{}
	}
	var alerts []alert.Alert
	pause := false
	for _, t := range g.cfg.Thresholds {
		ts := ThresholdState{Percent: t, State: StateOK, Forecast: StateOK}
		switch {
		case c.Percent >= float64(t):
			ts.State = StateAlarm
			if !g.alarmed[t] {
				g.alarmed[t] = true
				alerts = append(alerts, alert.SpendBreach(c.Day, c.Spent.String(), g.cfg.Limit.String(), t))
				pause = pause || t == 100
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
	alreadyPaused := g.paused == c.Day
	if pause && !alreadyPaused {
		g.paused = c.Day
	}
	c.Paused = g.paused == c.Day
	g.mu.Unlock()

	var errs []error
	if pause && !alreadyPaused && g.cfg.Pauser != nil {
		reason := "daily spend " + c.Spent.String() + " reached the limit " + g.cfg.Limit.String() + " on " + c.Day
		if err := g.cfg.Pauser.Pause(ctx, reason); err != nil {
			errs = append(errs, fmt.Errorf("spendguard: pause billing: %w", err))
			alerts = append(alerts, alert.Alert{Severity: alert.SeverityCritical, Title: "Spend limit reached but billing could NOT be paused", Message: err.Error(), Key: "spend-pause-failed"})
		}
	}
	for _, a := range alerts {
		a.Time = now
		if g.cfg.Notifier != nil {
			if err := g.cfg.Notifier.Notify(ctx, a); err != nil {
				errs = append(errs, fmt.Errorf("spendguard: alert: %w", err))
			}
		}
	}
	g.cfg.Logger.InfoContext(ctx, "spendguard: check", "day", c.Day, "spent", c.Spent.String(), "limit", g.cfg.Limit.String(),
		"percent", strconv.FormatFloat(c.Percent, 'f', 1, 64), "complete", c.Complete, "forecast", c.Forecast.String())
	return c, errors.Join(errs...)
}
