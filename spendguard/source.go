package spendguard

import (
	"github.com/levqor/levqor/money"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Kind classifies a Line.
type Kind string

// Line kinds. Costs count against the Guard's limit; revenue and costs make
// the report's net; balances and metrics are shown as they are.
const (
	KindCost    Kind = "cost"
	KindRevenue Kind = "revenue"
	KindBalance Kind = "balance"
	KindMetric  Kind = "metric"
)

// Line is one figure a Source reports for a period.
type Line struct {
	Label  string      `json:"label"`
	Kind   Kind        `json:"kind"`
	Amount money.Money `json:"amount,omitzero"` // cost, revenue, balance
	Count  int64       `json:"count,omitempty"` // metric
}

// Period is a half-open time range [Start, End); End before Start is not
// a period (ErrPeriod).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ErrPeriod marks a Period that ends before it starts.
var ErrPeriod = errors.New("spendguard: the period ends before it starts")

// Source reports figures for a period. An error means the figures are
// unknown, never zero.
type Source interface {
	Name() string
	Lines(ctx context.Context, p Period) ([]Line, error)
}

// FixedConfig configures a Fixed source.
type FixedConfig struct {
	// Label names the cost, e.g. "hosting". Required.
	Label string
	// Monthly is the cost per calendar month. Required; not negative.
	Monthly money.Money
}

// Fixed is a configured monthly cost (hosting, SaaS subscriptions),
// prorated to the period by the length of the month it starts in. It
// belongs in a cost report; a daily Guard's sources should be the spend a
// pause can stop (usage-billed APIs), or a fixed cost larger than the
// daily limit pauses billing every day.
type Fixed struct {
	label   string
	monthly money.Money
}

var _ Source = (*Fixed)(nil)

// NewFixed validates cfg.
func NewFixed(cfg FixedConfig) (*Fixed, error) {
	if cfg.Label == "" || !money.ValidCurrency(cfg.Monthly.Currency) || cfg.Monthly.Amount < 0 {
		return nil, fmt.Errorf("spendguard: FixedConfig needs a Label and a non-negative Monthly amount with a currency (got %q, %v)", cfg.Label, cfg.Monthly)
	}
	return &Fixed{label: cfg.Label, monthly: cfg.Monthly}, nil
}

// Name implements Source.
func (f *Fixed) Name() string { return f.label }

// Lines implements Source.
func (f *Fixed) Lines(_ context.Context, p Period) ([]Line, error) {
	if !p.End.After(p.Start) {
		return []Line{{Label: f.label, Kind: KindCost, Amount: money.New(0, f.monthly.Currency)}}, nil
	}
	y, m, _ := p.Start.Date()
	monthStart := time.Date(y, m, 1, 0, 0, 0, 0, p.Start.Location())
	month := int64(monthStart.AddDate(0, 1, 0).Sub(monthStart) / time.Second)
	secs := int64(p.End.Sub(p.Start) / time.Second)
	amt, err := f.monthly.MulDiv(secs, month) // checked, rounded half away from zero
	if err != nil {
		return nil, fmt.Errorf("spendguard: fixed cost %s: %w", f.label, err)
	}
	return []Line{{Label: f.label, Kind: KindCost, Amount: amt}}, nil
}

// SQLMetrics counts things in the application's own database (users,
// partners, rows) for the dashboard. Each query returns one integer.
type SQLMetrics struct {
	Label   string
	DB      *sql.DB
	Queries []MetricQuery
}

// MetricQuery is one labelled counting query.
type MetricQuery struct {
	Label, SQL string
}

var _ Source = (*SQLMetrics)(nil)

// Name implements Source.
func (s *SQLMetrics) Name() string { return s.Label }

// Lines implements Source.
func (s *SQLMetrics) Lines(ctx context.Context, _ Period) ([]Line, error) {
	if s.DB == nil {
		return nil, errors.New("spendguard: SQLMetrics has no DB")
	}
	var out []Line
	for _, q := range s.Queries {
		var n int64
		if err := s.DB.QueryRowContext(ctx, q.SQL).Scan(&n); err != nil {
			return nil, fmt.Errorf("metric %s: %w", q.Label, err)
		}
		out = append(out, Line{Label: q.Label, Kind: KindMetric, Count: n})
	}
	return out, nil
}
