package spendguard

import (
	"errors"

	"github.com/levqor/levqor/money"

	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v85"
)

// StripeConfig configures a Stripe source.
type StripeConfig struct {
	// Client is built with stripe.NewClient (tests point its backend at
	// an httptest.Server). Required.
	Client *stripe.Client
	// MaxPages caps the pages of balance transactions followed (100
	// each). Default DefaultMaxPages (100).
	MaxPages int
}

// Stripe reports the Stripe balance (available and pending), the revenue
// (charges and payments) and the Stripe fees of the period, from the
// balance and balance transactions APIs. Sums are checked: an overflow
// fails the source.
type Stripe struct{ cfg StripeConfig }

var _ Source = (*Stripe)(nil)

// NewStripe validates cfg.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if cfg.Client == nil {
		return nil, errors.New("spendguard: StripeConfig.Client is required")
	}
	switch {
	case cfg.MaxPages == 0:
		cfg.MaxPages = DefaultMaxPages
	case cfg.MaxPages < 0:
		return nil, errors.New("spendguard: StripeConfig.MaxPages must not be negative")
	}
	return &Stripe{cfg: cfg}, nil
}

// Name implements Source.
func (s *Stripe) Name() string { return "stripe" }

// Lines implements Source.
func (s *Stripe) Lines(ctx context.Context, p Period) ([]Line, error) {
	bal, err := s.cfg.Client.V1Balance.Retrieve(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("stripe balance: %w", err)
	}
	var out []Line
	for _, a := range bal.Available {
		out = append(out, Line{Label: "available balance", Kind: KindBalance, Amount: money.New(a.Amount, strings.ToUpper(string(a.Currency)))})
	}
	for _, a := range bal.Pending {
		out = append(out, Line{Label: "pending balance", Kind: KindBalance, Amount: money.New(a.Amount, strings.ToUpper(string(a.Currency)))})
	}
	params := &stripe.BalanceTransactionListParams{CreatedRange: &stripe.RangeQueryParams{
		GreaterThanOrEqual: p.Start.Unix(), LesserThan: p.End.Unix(),
	}}
	params.Limit = stripe.Int64(100)
	revenue, fees := map[string]money.Money{}, map[string]money.Money{}
	add := func(m map[string]money.Money, cur string, amount int64) error {
		sum, ok := m[cur]
		if !ok {
			sum = money.New(0, cur)
		}
		var err error
		m[cur], err = sum.Add(money.New(amount, cur))
		return err
	}
	list := s.cfg.Client.V1BalanceTransactions.List(ctx, params)
	pages, last := 0, (*stripe.APIResponse)(nil)
	for tx, err := range list.All(ctx) {
		if err != nil {
			return nil, fmt.Errorf("stripe balance transactions: %w", err)
		}
		if r := list.LastResponse(); r != last {
			if last, pages = r, pages+1; pages > s.cfg.MaxPages {
				return nil, fmt.Errorf("stripe balance transactions: more than %d pages (MaxPages)", s.cfg.MaxPages)
			}
		}
		cur := strings.ToUpper(string(tx.Currency))
		if tx.Type == "charge" || tx.Type == "payment" {
			if err := add(revenue, cur, tx.Amount); err != nil {
				return nil, fmt.Errorf("stripe revenue: %w", err)
			}
		}
		if err := add(fees, cur, tx.Fee); err != nil {
			return nil, fmt.Errorf("stripe fees: %w", err)
		}
	}
	for _, cur := range slices.Sorted(maps.Keys(revenue)) {
		out = append(out, Line{Label: "revenue", Kind: KindRevenue, Amount: revenue[cur]})
	}
	for _, cur := range slices.Sorted(maps.Keys(fees)) {
		out = append(out, Line{Label: "stripe fees", Kind: KindCost, Amount: fees[cur]})
	}
	return out, nil
}
