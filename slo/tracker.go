package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/defaults"
)

// BurnWindow is one multi-window burn-rate alert (Google SRE Workbook,
// ch. 5): it fires when the burn rate over both Long and Short exceeds
// Factor. A burn rate of 1 spends the error budget exactly over the period.
type BurnWindow struct {
	Long, Short time.Duration
	Factor      float64
	// Severity of the alert: SeverityCritical pages, SeverityWarning is a ticket.
	Severity alert.Severity
}

// DefaultBurnWindows returns the SRE Workbook's pairs for a 30-day SLO: 2% of
// the budget in 1h or 5% in 6h pages; 10% in 1d or 3d opens a ticket.
// A new slice each call.
func DefaultBurnWindows() []BurnWindow {
	return []BurnWindow{
		{Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4, Severity: alert.SeverityCritical},
		{Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 6, Severity: alert.SeverityCritical},
		{Long: 24 * time.Hour, Short: 2 * time.Hour, Factor: 3, Severity: alert.SeverityWarning},
		{Long: 72 * time.Hour, Short: 6 * time.Hour, Factor: 1, Severity: alert.SeverityWarning},
	}
}

// Defaults for TrackerConfig.
const (
	DefaultObjective     = 0.999
	DefaultPeriod        = 30 * 24 * time.Hour
	DefaultMinEvents     = 100
	DefaultEvalInterval  = time.Minute
	DefaultLatencyWindow = time.Hour
)

// Bounds of TrackerConfig: the Tracker's rings are allocated up front, one
// slot per hour of Period and per minute of the longest burn window (at
// most MaxPeriod too) and of LatencyWindow.
const (
	MaxPeriod        = 366 * 24 * time.Hour
	MaxLatencyWindow = 24 * time.Hour
)

// TrackerConfig configures a Tracker. Zero fields take the defaults.
type TrackerConfig struct {
	// Name identifies the SLO in alerts. Default "availability".
	Name string
	// Objective is the target fraction of good events. Default
	// DefaultObjective (99.9%).
	Objective float64
	// Period is the SLO window the error budget covers, an hour to
	// MaxPeriod. Default 30 days.
	Period time.Duration
	// LatencyThreshold makes the middleware count a request as good only
	// when it is faster than this (a latency SLI) as well as non-5xx.
	// Default 0: availability only.
	LatencyThreshold time.Duration
	// BurnWindows are the alerting pairs, none longer than MaxPeriod.
	// Default DefaultBurnWindows().
	BurnWindows []BurnWindow
	// MinEvents: a pair does not fire while its long window holds fewer
	// events (low traffic makes rates meaningless). Default DefaultMinEvents.
	MinEvents int
	// Notifier receives an alert when a pair starts or stops firing. Optional.
	Notifier alert.Notifier
	// EvalInterval is how often a background goroutine evaluates the burn
	// rates. Default DefaultEvalInterval (1m); negative: no goroutine, call
	// Evaluate yourself.
	EvalInterval time.Duration
	// LatencyWindow is the window of Percentiles, a minute to
	// MaxLatencyWindow. Default 1h.
	LatencyWindow time.Duration
	// Logger receives alert failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Tracker records good and bad events for one SLO and evaluates its error
// budget and burn rates. Memory is fixed at construction: per-minute
// counters for the longest burn window, per-hour counters for the period,
// and per-minute latency histograms for LatencyWindow (about 170 KB with
// the defaults). Recording is O(1), lock-free on the hot path and
// allocation-free.
type Tracker struct {
	cfg     TrackerConfig
	minutes ring
	hours   ring
	lat     latencyRing

	mu     sync.Mutex // evaluation and alert state
	firing []bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewTracker validates cfg and starts the evaluation goroutine (unless
// EvalInterval is negative); Close stops it.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if cfg.Name == "" {
		cfg.Name = "availability"
	}
	defaults.Set(&cfg.Objective, DefaultObjective)
	defaults.Set(&cfg.Period, DefaultPeriod)
	defaults.Set(&cfg.MinEvents, DefaultMinEvents)
	defaults.Set(&cfg.EvalInterval, DefaultEvalInterval)
	defaults.Set(&cfg.LatencyWindow, DefaultLatencyWindow)
	if cfg.BurnWindows == nil {
		cfg.BurnWindows = DefaultBurnWindows()
	}
	switch {
	case !(cfg.Objective > 0 && cfg.Objective < 1):
		return nil, fmt.Errorf("slo: Objective %v must be between 0 and 1 (exclusive)", cfg.Objective)
	case cfg.Period < time.Hour || cfg.Period > MaxPeriod:
		return nil, fmt.Errorf("slo: Period %v must be from an hour to MaxPeriod (%v)", cfg.Period, MaxPeriod)
	case cfg.MinEvents < 0 || cfg.LatencyThreshold < 0 || cfg.LatencyWindow < time.Minute || cfg.LatencyWindow > MaxLatencyWindow:
		return nil, errors.New("slo: negative MinEvents or LatencyThreshold, or LatencyWindow not from a minute to MaxLatencyWindow")
	}
	longest := time.Duration(0)
	for _, w := range cfg.BurnWindows {
		if w.Short <= 0 || w.Long < w.Short || w.Long > MaxPeriod || w.Factor <= 0 || w.Short%time.Minute != 0 || w.Long%time.Minute != 0 {
			return nil, fmt.Errorf("slo: invalid burn window %+v (whole minutes, 0 < Short <= Long <= MaxPeriod, Factor > 0)", w)
		}
		longest = max(longest, w.Long)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tracker{
		cfg:     cfg,
		minutes: newRing(int(longest/time.Minute) + 1),
		hours:   newRing(int((cfg.Period+time.Hour-1)/time.Hour) + 1),
		lat:     newLatencyRing(int(cfg.LatencyWindow/time.Minute) + 1),
		firing:  make([]bool, len(cfg.BurnWindows)),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.EvalInterval < 0 {
		close(t.done)
	} else {
		go t.loop()
	}
	return t, nil
}

func (t *Tracker) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.EvalInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.Evaluate(context.Background())
		}
	}
}

// Close stops the evaluation goroutine. Safe to call more than once.
func (t *Tracker) Close() error {
	t.closeOnce.Do(func() { close(t.stop) })
	<-t.done
	return nil
}

// Record counts one event.
func (t *Tracker) Record(good bool) { t.RecordAt(t.cfg.Now(), good) }

// RecordAt counts one event that happened at now: for a caller that has
// just read the clock (a request's end), one clock read fewer. now is the
// time the tracker's Now gives, or earlier: an event older than the period
// counts nowhere.
func (t *Tracker) RecordAt(now time.Time, good bool) {
	sec := now.Unix()
	t.minutes.add(floorDiv(sec, 60), good)
	t.hours.add(floorDiv(sec, 3600), good)
}

// Observe counts one event with its latency, which also feeds Percentiles.
func (t *Tracker) Observe(latency time.Duration, good bool) { t.ObserveAt(t.cfg.Now(), latency, good) }

// ObserveAt is Observe for an event that ended at now.
func (t *Tracker) ObserveAt(now time.Time, latency time.Duration, good bool) {
	sec := now.Unix()
	t.minutes.add(floorDiv(sec, 60), good)
	t.hours.add(floorDiv(sec, 3600), good)
	t.lat.add(floorDiv(sec, 60), latency)
}

// Reset forgets every event and alert state (e.g. after an incident review
// resets the budget). Firing alerts are not resolved by a notification.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.minutes.reset()
	t.hours.reset()
	t.lat.reset()
	clear(t.firing)
}

// BurnRate is one window pair's state.
type BurnRate struct {
	Window           BurnWindow
	Long, Short      float64 // burn rates
	LongEvents       uint64
	Firing           bool
	SuppressedLowVol bool // would fire but for MinEvents
}

// Status is a snapshot of the SLO.
type Status struct {
	Name      string
	Objective float64
	// SLI is the fraction of good events over the period (1 with no events).
	SLI    float64
	Events uint64
	// BudgetRemaining is the unspent fraction of the error budget over the
	// period: 1 untouched, 0 spent, negative overspent.
	BudgetRemaining float64
	BurnRates       []BurnRate
}

// Evaluate computes the status now and sends an alert for every pair that
// started or stopped firing since the last evaluation.
func (t *Tracker) Evaluate(ctx context.Context) Status {
	t.mu.Lock()
	now := t.cfg.Now().Unix()
	st := t.status(now)
	var changed []BurnRate
	for i := range st.BurnRates {
		if st.BurnRates[i].Firing != t.firing[i] {
			t.firing[i] = st.BurnRates[i].Firing
			changed = append(changed, st.BurnRates[i])
		}
	}
	t.mu.Unlock()
	for _, br := range changed {
		t.notify(ctx, st, br)
	}
	return st
}

// Status computes the SLO's state without alerting.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status(t.cfg.Now().Unix())
}

func (t *Tracker) status(now int64) Status {
	budget := 1 - t.cfg.Objective
	good, total := t.hours.sum(floorDiv(now, 3600), int(t.cfg.Period/time.Hour))
	st := Status{Name: t.cfg.Name, Objective: t.cfg.Objective, SLI: 1, Events: total, BudgetRemaining: 1}
	if total > 0 {
		st.SLI = float64(good) / float64(total)
		st.BudgetRemaining = 1 - (1-st.SLI)/budget
	}
	burn := func(w time.Duration) (float64, uint64) {
		g, n := t.minutes.sum(floorDiv(now, 60), int(w/time.Minute))
		if n == 0 {
			return 0, 0
		}
		return (1 - float64(g)/float64(n)) / budget, n
	}
	for _, w := range t.cfg.BurnWindows {
		br := BurnRate{Window: w}
		br.Long, br.LongEvents = burn(w.Long)
		br.Short, _ = burn(w.Short)
		over := br.Long >= w.Factor && br.Short >= w.Factor
		br.Firing = over && br.LongEvents >= uint64(t.cfg.MinEvents)
		br.SuppressedLowVol = over && !br.Firing
		st.BurnRates = append(st.BurnRates, br)
	}
	return st
}

func (t *Tracker) notify(ctx context.Context, st Status, br BurnRate) {
	if t.cfg.Notifier == nil {
		return
	}
	w := br.Window
	pair := fmtDur(w.Long) + "/" + fmtDur(w.Short)
	a := alert.Alert{
		Time: t.cfg.Now(),
		Key:  "burn|" + t.cfg.Name + "|" + pair,
		Fields: []alert.Field{
			{Key: "Burn rate (" + fmtDur(w.Long) + ")", Value: strconv.FormatFloat(br.Long, 'f', 1, 64)},
			{Key: "Burn rate (" + fmtDur(w.Short) + ")", Value: strconv.FormatFloat(br.Short, 'f', 1, 64)},
			{Key: "Threshold", Value: strconv.FormatFloat(w.Factor, 'f', 1, 64)},
			{Key: "Budget remaining", Value: strconv.FormatFloat(100*st.BudgetRemaining, 'f', 1, 64) + "%"},
		},
	}
	if br.Firing {
		a.Severity = w.Severity
		a.Title = fmt.Sprintf("SLO %s burning error budget %.1fx (%s)", t.cfg.Name, br.Long, pair)
	} else {
		a.Severity = alert.SeveritySuccess
		a.Title = fmt.Sprintf("SLO %s burn rate back under %.1fx (%s)", t.cfg.Name, w.Factor, pair)
	}
	if err := t.cfg.Notifier.Notify(ctx, a); err != nil {
		t.cfg.Logger.ErrorContext(ctx, "slo: alert failed", "err", err)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
}
