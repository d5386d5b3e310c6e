package main

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/payout"
	"github.com/levqor/levqor/slo"
	"github.com/levqor/levqor/spendguard"
)

// Dashboard defaults.
const (
	dashboardDays     = 30               // cost history shown
	dashboardAlerts   = 50               // last alerts shown
	dashboardCostsTTL = 10 * time.Minute // cost figures are reused this long (they cost API calls)
	dashboardSpendTTL = time.Minute      // today's spend, and a failed cost build, are reused this long
	dashboardTimeout  = 20 * time.Second // per data source
)

// panelState is every panel's first field: "ok", or "unknown" with why.
// A panel whose source failed is never shown as zero.
type panelState struct {
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

func known() panelState { return panelState{State: "ok"} }

func unknown(why string) panelState { return panelState{State: "unknown", Error: why} }

// dashboardData is GET /dashboard.json, and what /dashboard renders.
type dashboardData struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Costs       costsPanel     `json:"costs"`
	Spend       spendPanel     `json:"spend"`
	SLO         sloPanel       `json:"slo"`
	Alerts      alertsPanel    `json:"alerts"`
	Backups     backupsPanel   `json:"backups"`
	Payouts     payoutsPanel   `json:"payouts"`
	Nonce       string         `json:"-"`
	Chart       *costChart     `json:"-"`
	Series      *latencyChart  `json:"-"`
	Currencies  []currencyView `json:"-"`
}

// costsPanel: the last 30 days by source, and per day for the chart.
type costsPanel struct {
	panelState
	Report spendguard.Report   `json:"report"` // the same figures as `costs --json --days 30`
	Days   []spendguard.Report `json:"days"`   // one report per day, oldest first
}

type spendPanel struct {
	panelState
	Check  *spendguard.Check      `json:"check,omitempty"`
	Pause  *spendguard.PauseState `json:"pause,omitempty"`
	Paused string                 `json:"paused"` // "yes", "no" or "unknown"
}

type sloPanel struct {
	panelState
	Availability slo.Status       `json:"availability"`
	Latency      slo.Status       `json:"latency"`
	Threshold    string           `json:"latency_threshold"`
	Percentiles  map[string]int64 `json:"percentiles_us,omitempty"` // p50, p95, p99 in µs; absent with no samples
	Series       []latencyPoint   `json:"series"`
}

type alertRow struct {
	Severity  string    `json:"severity"`
	At        time.Time `json:"at"`
	Title     string    `json:"title"`
	Delivered bool      `json:"delivered"`
	Error     string    `json:"error,omitempty"`
}

type alertsPanel struct {
	panelState
	Recent []alertRow `json:"recent"`
}

type backupsPanel struct {
	panelState
	Count    int       `json:"count"`
	Newest   string    `json:"newest,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Age      string    `json:"age,omitempty"`
	Size     int64     `json:"size"`
	Verified bool      `json:"verified"`
	// Elsewhere names the machine that made the newest backup when it is
	// not in this replica's directory (replicas take turns at scheduled
	// backups); Size is then unknown here.
	Elsewhere string `json:"elsewhere,omitempty"`
}

type payoutTotals struct {
	Currency string `json:"currency"`
	Pending  int64  `json:"pending"`
	Sent     int64  `json:"sent"` // sent or confirmed
	Failed   int64  `json:"failed"`
	Unpaid   int64  `json:"unpaid"` // commissions not yet in a payout, net of reversals
}

type payoutsPanel struct {
	panelState
	Totals     []payoutTotals `json:"totals"`
	Onboarding []string       `json:"partners_awaiting_onboarding"`
	Partners   int            `json:"partners"`
}

// dashboard gathers the panels; each source is asked on its own with a
// deadline, and a failure marks only its panel unknown.
type dashboard struct {
	a *app

	mu       sync.Mutex // one cost build at a time; guards the caches
	costs    costsPanel
	costsAt  time.Time // when costs expires
	building chan struct{}
	spend    spendPanel
	spendAt  time.Time // when spend expires
}

func (d *dashboard) data(ctx context.Context) dashboardData {
	out := dashboardData{GeneratedAt: time.Now().UTC()}
	var wg sync.WaitGroup
	wg.Go(func() { out.Costs = d.costsPanel(ctx) })
	wg.Go(func() { out.Spend = d.spendPanel(ctx) })
	wg.Go(func() { out.Payouts = d.payoutsPanel(ctx) })
	out.SLO = d.sloPanel()
	out.Alerts = d.alertsPanel()
	out.Backups = d.backupsPanel(ctx)
	wg.Wait()
	return out
}

// costsPanel builds the 30-day report and one per day, at most once per
// dashboardCostsTTL whatever the number of viewers (the sources are paid
// APIs with rate limits).
func (d *dashboard) costsPanel(ctx context.Context) costsPanel {
	d.mu.Lock()
	if time.Now().Before(d.costsAt) {
		c := d.costs
		d.mu.Unlock()
		return c
	}
	if d.building != nil { // another request is building: wait for it
		ch := d.building
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return costsPanel{panelState: unknown("cost report still being built")}
		}
		d.mu.Lock()
		c := d.costs
		d.mu.Unlock()
		return c
	}
	ch := make(chan struct{})
	d.building = ch
	d.mu.Unlock()

	c := d.buildCosts(ctx)

	d.mu.Lock()
	d.costs, d.costsAt, d.building = c, time.Now().Add(dashboardCostsTTL), nil
	if c.State != "ok" {
		d.costsAt = time.Now().Add(dashboardSpendTTL) // retry soon, not on every view
	}
	d.mu.Unlock()
	close(ch)
	return c
}

func (d *dashboard) buildCosts(ctx context.Context) costsPanel {
	if costs, err := costSources(d.a.cfg, true); err != nil || len(costs) == 0 {
		return costsPanel{panelState: unknown("no cost sources configured (STRIPE_SECRET_KEY, OPENAI_ADMIN_KEY, LEVQOR_INFRA_MONTHLY)")}
	}
	sources, err := costReportSources(d.a.cfg, d.a.db)
	if err != nil {
		return costsPanel{panelState: unknown(err.Error())}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*dashboardTimeout)
	defer cancel()
	now := time.Now().UTC()
	today, _ := spendguard.DayBounds(now, time.UTC)
	c := costsPanel{Report: spendguard.BuildReport(ctx, sources, spendguard.Period{Start: today.AddDate(0, 0, -(dashboardDays - 1)), End: now}, now)}
	for i := dashboardDays - 1; i >= 0; i-- {
		start := today.AddDate(0, 0, -i)
		end := start.AddDate(0, 0, 1)
		if end.After(now) {
			end = now
		}
		c.Days = append(c.Days, spendguard.BuildReport(ctx, sources, spendguard.Period{Start: start, End: end}, now))
	}
	c.panelState = known()
	if !c.Report.Complete {
		c.panelState = unknown(failedSources(c.Report))
	}
	return c
}

// failedSources describes a report's failed sources, as the spend panel
// describes a check's.
func failedSources(r spendguard.Report) string {
	var failed []spendguard.SourceError
	for _, s := range r.Sources {
		if s.Err != "" {
			failed = append(failed, spendguard.SourceError{Source: s.Name, Err: s.Err})
		}
	}
	return sourceFailure(failed)
}

func sourceFailure(failed []spendguard.SourceError) string {
	parts := make([]string, len(failed))
	for i, f := range failed {
		parts[i] = f.Source + ": " + f.Err
	}
	return "a cost source failed (" + strings.Join(parts, "; ") + ")"
}

// spendPanel checks today's spend, at most once a minute, without side
// effects: the dashboard's guard neither alerts nor pauses (the `spend`
// command does), and the pause state is read from the database.
func (d *dashboard) spendPanel(ctx context.Context) spendPanel {
	d.mu.Lock()
	if time.Now().Before(d.spendAt) {
		p := d.spend
		d.mu.Unlock()
		return p
	}
	d.mu.Unlock()
	p := d.checkSpend(ctx)
	d.mu.Lock()
	d.spend, d.spendAt = p, time.Now().Add(dashboardSpendTTL)
	d.mu.Unlock()
	return p
}

func (d *dashboard) checkSpend(ctx context.Context) spendPanel {
	p := spendPanel{Paused: "unknown"}
	st, err := d.a.billing.State(ctx)
	if err == nil {
		p.Pause = &st
		p.Paused = map[bool]string{true: "yes", false: "no"}[st.Paused]
	}
	pauseErr := err
	sources, err := costSources(d.a.cfg, false)
	if err != nil {
		p.panelState = unknown(err.Error())
		return p
	}
	if len(sources) == 0 {
		p.panelState = unknown("no usage cost sources configured (STRIPE_SECRET_KEY, OPENAI_ADMIN_KEY)")
		return p
	}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{Sources: sources, Limit: d.a.cfg.DailyLimit, Logger: d.a.log})
	if err != nil {
		p.panelState = unknown(err.Error())
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, dashboardTimeout)
	defer cancel()
	check, err := g.Check(ctx)
	switch {
	case err != nil:
		p.panelState = unknown(err.Error())
	case !check.Complete:
		p.Check = &check
		why := sourceFailure(check.Failed)
		if check.Spent.Amount > 0 {
			why += "; today's spend is at least " + check.Spent.String()
		}
		p.panelState = unknown(why)
	default:
		p.Check = &check
		p.panelState = known()
	}
	if pauseErr != nil && p.State == "ok" {
		p.panelState = unknown("billing pause: " + pauseErr.Error())
	}
	return p
}

func (d *dashboard) sloPanel() sloPanel {
	p := sloPanel{panelState: known(), Availability: d.a.availability.Status(), Latency: d.a.tracker.Status(),
		Threshold: d.a.cfg.SLOLatency.String(), Series: d.a.series.points(time.Now())}
	if ds, ok := d.a.tracker.Percentiles(0.5, 0.95, 0.99); ok {
		p.Percentiles = map[string]int64{"p50": ds[0].Microseconds(), "p95": ds[1].Microseconds(), "p99": ds[2].Microseconds()}
	}
	return p
}

func (d *dashboard) alertsPanel() alertsPanel {
	p := alertsPanel{panelState: known(), Recent: []alertRow{}}
	recs := d.a.alerts.History().Records(alert.Query{Limit: dashboardAlerts})
	for i := len(recs) - 1; i >= 0; i-- { // newest first
		r := recs[i]
		p.Recent = append(p.Recent, alertRow{Severity: r.Alert.Severity.String(), At: r.At.UTC(), Title: r.Alert.Title, Delivered: r.Delivered(), Error: r.Err})
	}
	return p
}

func (d *dashboard) backupsPanel(ctx context.Context) backupsPanel {
	store, err := backupStore(d.a.cfg, d.a.log, nil)
	if err != nil {
		return backupsPanel{panelState: unknown(err.Error())}
	}
	list, err := store.List()
	if err != nil {
		return backupsPanel{panelState: unknown(err.Error())}
	}
	p := backupsPanel{panelState: known(), Count: len(list)}
	sort.Slice(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
	if len(list) > 0 {
		n := list[len(list)-1]
		p.Newest, p.At, p.Size, p.Verified = filepath.Base(n.Name), n.Time.UTC(), n.Size, !n.VerifiedAt.IsZero()
	}
	// The newest backup of any replica, from the schedule's record (only
	// verified backups are recorded there).
	ctx, cancel := context.WithTimeout(ctx, dashboardTimeout)
	defer cancel()
	if r, err := newBackupSchedule(d.a.db).read(ctx); err == nil && r.last.After(p.At) &&
		!slices.ContainsFunc(list, func(b backup.Info) bool { return b.Name == r.lastName }) {
		p.Newest, p.At, p.Size, p.Verified, p.Elsewhere = r.lastName, r.last.UTC(), 0, true, r.lastBy
	}
	if p.Newest != "" {
		p.Age = time.Since(p.At).Round(time.Minute).String()
	}
	return p
}

func (d *dashboard) payoutsPanel(ctx context.Context) payoutsPanel {
	ctx, cancel := context.WithTimeout(ctx, dashboardTimeout)
	defer cancel()
	l := d.a.ledger
	pays, err := l.Payouts(ctx)
	if err != nil {
		return payoutsPanel{panelState: unknown(err.Error())}
	}
	partners, err := l.Partners(ctx)
	if err != nil {
		return payoutsPanel{panelState: unknown(err.Error())}
	}
	bals, err := l.Balances(ctx)
	if err != nil {
		return payoutsPanel{panelState: unknown(err.Error())}
	}
	by := map[string]*payoutTotals{}
	get := func(cur string) *payoutTotals {
		if by[cur] == nil {
			by[cur] = &payoutTotals{Currency: cur}
		}
		return by[cur]
	}
	for _, p := range pays {
		t := get(p.Currency)
		switch p.State {
		case payout.StatePending:
			t.Pending += p.Amount
		case payout.StateSent, payout.StateConfirmed:
			t.Sent += p.Amount
		case payout.StateFailed:
			t.Failed += p.Amount
		}
	}
	for _, b := range bals {
		get(b.Currency).Unpaid += b.Unpaid
	}
	out := payoutsPanel{panelState: known(), Totals: []payoutTotals{}, Onboarding: []string{}}
	for _, t := range by {
		out.Totals = append(out.Totals, *t)
	}
	sort.Slice(out.Totals, func(i, j int) bool { return out.Totals[i].Currency < out.Totals[j].Currency })
	for _, p := range partners {
		if dsar.IsPseudonym(p.ID) {
			continue // an erased partner, kept for accounting: never paid, not onboarding
		}
		out.Partners++
		if !p.PayoutsEnabled {
			out.Onboarding = append(out.Onboarding, p.ID)
		}
	}
	return out
}

// latencySeries keeps per-minute request counts, mean latency and
// anomalies for the last hour (fixed memory: 60 buckets).
type latencySeries struct {
	mu      sync.Mutex
	buckets [60]latencyBucket
}

type latencyBucket struct {
	minute    int64 // Unix minute the bucket holds
	count     int64
	sum       time.Duration
	max       time.Duration
	anomalies int64
}

// latencyPoint is one minute of the series.
type latencyPoint struct {
	Minute    time.Time `json:"minute"`
	Count     int64     `json:"count"`
	MeanUS    int64     `json:"mean_us"`
	MaxUS     int64     `json:"max_us"`
	Anomalies int64     `json:"anomalies"`
}

func (s *latencySeries) observe(now time.Time, d time.Duration, anomalous bool) {
	m := now.Unix() / 60
	s.mu.Lock()
	b := &s.buckets[m%60]
	if b.minute != m {
		*b = latencyBucket{minute: m}
	}
	b.count++
	b.sum += d
	b.max = max(b.max, d)
	if anomalous {
		b.anomalies++
	}
	s.mu.Unlock()
}

// points returns the last hour, oldest first, with empty minutes as zero
// counts.
func (s *latencySeries) points(now time.Time) []latencyPoint {
	m := now.Unix() / 60
	out := make([]latencyPoint, 0, 60)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := m - 59; i <= m; i++ {
		p := latencyPoint{Minute: time.Unix(i*60, 0).UTC()}
		if b := s.buckets[i%60]; b.minute == i && b.count > 0 {
			p.Count, p.MeanUS, p.MaxUS, p.Anomalies = b.count, (b.sum / time.Duration(b.count)).Microseconds(), b.max.Microseconds(), b.anomalies
		}
		out = append(out, p)
	}
	return out
}

// moneyText formats minor units in a currency for the page.
func moneyText(amount int64, currency string) string { return money.New(amount, currency).String() }
