package spendguard_test

import (
	"github.com/levqor/levqor/money"

	"context"
	"os"
	"time"

	"github.com/levqor/levqor/spendguard"
)

// revenue is a stand-in source reporting the day's sales.
type revenue struct{}

func (revenue) Name() string { return "sales" }
func (revenue) Lines(context.Context, spendguard.Period) ([]spendguard.Line, error) {
	return []spendguard.Line{
		{Label: "revenue", Kind: spendguard.KindRevenue, Amount: money.Money{Amount: 12500, Currency: "USD"}},
		{Label: "stripe fees", Kind: spendguard.KindCost, Amount: money.Money{Amount: 393, Currency: "USD"}},
		{Label: "paying users", Kind: spendguard.KindMetric, Count: 42},
	}, nil
}

func ExampleReport_WriteText() {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hosting, _ := spendguard.NewFixed(spendguard.FixedConfig{Label: "hosting", Monthly: money.New(30000, "USD")})
	sources := []spendguard.Source{revenue{}, hosting}
	r := spendguard.BuildReport(context.Background(), sources, spendguard.Period{Start: day, End: day.AddDate(0, 0, 1)}, day)
	_ = r.WriteText(os.Stdout)
	// Output:
	// Cost report 2026-11-01 00:00 to 2026-11-02 00:00
	// SOURCE     ITEM          KIND     AMOUNT
	// sales      revenue       revenue  $125.00
	// sales      stripe fees   cost     $3.93
	// sales      paying users  metric   42
	// hosting    hosting       cost     $10.00
	// TOTAL USD  costs                  $13.93
	// TOTAL USD  revenue                $125.00
	// TOTAL USD  net                    $111.07
}
