package spendguard

import (
	"github.com/levqor/levqor/money"

	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v85"
)

// Stripe reports the Stripe balance (available and pending), the revenue
// (charges and payments) and the Stripe fees of the period, from the
// balance and balance transactions APIs. Build the client with
// stripe.NewClient; tests point its backend at an httptest.Server.
type Stripe struct {
	Client *stripe.Client
}

var _ Source = (*Stripe)(nil)

// Name implements Source.
func (s *Stripe) Name() string { return "stripe" }

// Lines implements Source.
func (s *Stripe) Lines(ctx context.Context, p Period) ([]Line, error) {
	bal, err := s.Client.V1Balance.Retrieve(ctx, nil)
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
	revenue, fees := map[string]int64{}, map[string]int64{}
	for tx, err := range s.Client.V1BalanceTransactions.List(ctx, params).All(ctx) {
		if err != nil {
			return nil, fmt.Errorf("stripe balance transactions: %w", err)
		}
		cur := strings.ToUpper(string(tx.Currency))
		switch tx.Type {
		case "charge", "payment":
			revenue[cur] += tx.Amount
		}
		fees[cur] += tx.Fee
	}
	for _, cur := range slices.Sorted(maps.Keys(revenue)) {
		out = append(out, Line{Label: "revenue", Kind: KindRevenue, Amount: money.New(revenue[cur], cur)})
	}
	for _, cur := range slices.Sorted(maps.Keys(fees)) {
		out = append(out, Line{Label: "stripe fees", Kind: KindCost, Amount: money.New(fees[cur], cur)})
	}
	return out, nil
}
