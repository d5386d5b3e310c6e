// Package payout pays partners their commissions exactly once.
//
// # Quick start
//
//	ledger, _ := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
//	_, _ = ledger.Accrue(ctx, "acme", invoiceID, payout.Commission(sale, payout.DefaultCommissionBasisPoints), "USD", now)
//	transfers, _ := payout.NewStripeTransfers(payout.StripeTransfersConfig{Client: stripeClient})
//	r, _ := payout.NewRunner(payout.RunnerConfig{Ledger: ledger, Payouter: transfers})
//	report, err := r.Run(ctx) // exactly once per partner, across crashes and replicas
//
// # Design
//
// A Ledger (SQL; SQLite by default, schema created by the package) records
// partners, the commissions they accrue (20% of a sale by default,
// idempotent per source reference) and payouts with their states:
// pending → sent → confirmed, or failed with a reason.
//
// A partner signing up through Stripe Connect onboarding is added with
// AddOnboardingPartner (or AddOnboardingPartnerTx, inside the caller's
// transaction) and paid nothing until SetPayoutsEnabled (Stripe's
// account.updated, payouts_enabled). A refund takes a commission back with
// Reverse: an unpaid commission nets to nothing, a paid one leaves a
// negative balance that the next payout in its currency absorbs.
//
// Run pays every partner whose unpaid balance (commissions less
// reversals) in a currency has reached that currency's minimum ($50 by
// default) and whose account is ready. For each it first creates the
// payout row (pending, with its own id) and reserves the commissions in one
// transaction, then calls the Payouter with the payout id as idempotency
// key, then records the result. A crash or error between any two steps is
// repaired by the next Run: a pending payout is looked up at the provider
// (Find) and otherwise retried with the same key, so a partner is never
// paid twice and no commission is lost. A permanent failure releases the
// commissions and alerts. Concurrent Runs (several replicas) cannot
// reserve the same commissions twice — reservation is a conditional update
// — and a lease keeps two Runs from working on one pending payout at once.
//
// StripeTransfers implements Payouter with Stripe Connect transfers
// (POST /v1/transfers, Idempotency-Key, transfer_group = payout id),
// mapping Stripe's errors to retryable or permanent.
package payout
