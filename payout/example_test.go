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

// ExampleRunner_Run_pay is a real run: a fake Payouter stands in for
// Stripe; the partner over the minimum is paid once, and a second run pays
// nothing.
func ExampleRunner_Run_pay() {
	dir, _ := os.MkdirTemp("", "payout-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "ledger.db"))
	defer db.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	ledger, _ := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
	_ = ledger.AddPartner(ctx, "acme", "acct_1Acme", now)
	_, _ = ledger.Accrue(ctx, "acme", "invoice-1", 6000, "USD", now)

	stripe := &fakePayouter{}
	r, _ := payout.NewRunner(payout.RunnerConfig{Ledger: ledger, Payouter: stripe, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	rep, _ := r.Run(ctx)
	fmt.Println("sent:", len(rep.Sent), rep.Sent[0].Money(), "transfer", rep.Sent[0].TransferID, "done:", rep.Done())
	rep, _ = r.Run(ctx)
	fmt.Println("second run sent:", len(rep.Sent), "transfers made:", stripe.n)
	// Output:
	// sent: 1 $60.00 transfer tr_1 done: true
	// second run sent: 0 transfers made: 1
}
