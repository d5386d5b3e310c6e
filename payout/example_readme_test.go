package payout_test

import (
	"context"
	"database/sql"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/payout"
)

// Example_readme is the payout section of the README, compiled.
func Example_readme() {
	ctx, now := context.Background(), time.Now()
	var (
		db        *sql.DB
		sc        *stripe.Client
		notifier  alert.Notifier
		invoiceID string
		saleCents int64
	)
	if db == nil {
		return // compiled, not run
	}
	// README:begin
	ledger, _ := payout.NewLedger(ctx, payout.LedgerConfig{DB: db}) // SQLite or PostgreSQL, told apart by the driver
	_ = ledger.AddPartner(ctx, "acme", "acct_1Acme", now)
	_, _ = ledger.Accrue(ctx, "acme", invoiceID, payout.Commission(saleCents, payout.DefaultCommissionBasisPoints), "USD", now)
	transfers, _ := payout.NewStripeTransfers(payout.StripeTransfersConfig{Client: sc})
	r, _ := payout.NewRunner(payout.RunnerConfig{Ledger: ledger, Payouter: transfers, Notifier: notifier})
	report, err := r.Run(ctx) // cron it; safe to run on every replica; report.Done() when nothing is left pending
	// README:end
	_, _ = report, err
}
