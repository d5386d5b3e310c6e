package payout_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/levqor/levqor/payout"
	_ "modernc.org/sqlite"
)

// fakePayouter stands in for Stripe in this example.
type fakePayouter struct{ n int }

func (f *fakePayouter) Pay(_ context.Context, t payout.Transfer) (string, error) {
	f.n++
	return fmt.Sprintf("tr_%d", f.n), nil
}
func (f *fakePayouter) Find(context.Context, string) (string, bool, error) { return "", false, nil }

func ExampleRunner_Run() {
	dir, _ := os.MkdirTemp("", "payout-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "ledger.db"))
	defer db.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

	ledger, _ := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
	_ = ledger.AddPartner(ctx, "acme", "acct_1Acme", now)
	_ = ledger.AddPartner(ctx, "tiny", "acct_1Tiny", now)
	// 20% of two $150 sales: $60, over the $50 minimum.
	_, _ = ledger.Accrue(ctx, "acme", "invoice-1", payout.Commission(15000, payout.DefaultCommissionBasisPoints), "USD", now)
	_, _ = ledger.Accrue(ctx, "acme", "invoice-2", payout.Commission(15000, payout.DefaultCommissionBasisPoints), "USD", now)
	_, _ = ledger.Accrue(ctx, "tiny", "invoice-3", payout.Commission(10000, payout.DefaultCommissionBasisPoints), "USD", now)

	r, _ := payout.NewRunner(payout.RunnerConfig{Ledger: ledger, Payouter: &fakePayouter{}, DryRun: true, Logger: slog.New(slog.DiscardHandler)})
	rep, _ := r.Run(ctx)
	_ = rep.WriteText(os.Stdout)
	// Output:
	// STATUS     PARTNER  AMOUNT  PAYOUT  NOTE
	// would pay  acme     $60.00
}
