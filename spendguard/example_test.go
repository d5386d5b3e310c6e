package spendguard_test

import (
	"fmt"
	"log/slog"

	"github.com/levqor/levqor/alert"
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

// usage is a stand-in usage-billed API whose cost so far is settable.
type usage struct{ cents int64 }

func (u *usage) Name() string { return "api" }
func (u *usage) Lines(context.Context, spendguard.Period) ([]spendguard.Line, error) {
	return []spendguard.Line{{Label: "usage", Kind: spendguard.KindCost, Amount: money.New(u.cents, "USD")}}, nil
}

// ExampleGuard: each threshold alerts once as it is crossed, the
// end-of-day forecast warns before the limit is reached (82% at 18:00
// extrapolates to 109%), and at 100% the Pauser stops billing.
func ExampleGuard() {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	api := &usage{}
	paused := false
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: []spendguard.Source{api}, Limit: money.New(5000, "USD"), // $50 a day
		Pauser:   spendguard.PauseFunc(func(context.Context, string) error { paused = true; return nil }),
		Notifier: printNotifier{}, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
	})
	for _, cents := range []int64{1000, 2600, 4100, 5200} {
		api.cents = cents
		c, _ := g.Check(context.Background())
		fmt.Printf("spent %s (%.0f%%) paused=%v\n", c.Spent, c.Percent, c.Paused)
	}
	fmt.Println("billing paused:", paused)
	// Output:
	// spent $10.00 (20%) paused=false
	// alert: Daily spend at 50% of limit
	// spent $26.00 (52%) paused=false
	// alert: Daily spend at 80% of limit
	// alert: Daily spend forecast exceeds the limit
	// spent $41.00 (82%) paused=false
	// alert: Daily spend at 100% of limit
	// spent $52.00 (104%) paused=true
	// billing paused: true
}

type printNotifier struct{}

func (printNotifier) Notify(_ context.Context, a alert.Alert) error {
	fmt.Println("alert:", a.Title)
	return nil
}
