package main

import (
	"context"
	"database/sql"
	"errors"

	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/payout"
)

// payoutsSource exports a partner's payouts and, on erasure, moves the
// whole partner (its row, commissions, reversals and payouts) to the
// pseudonym EraseHash would write, in the erasure's transaction. Hashing
// each table's partner_id on its own would break the ledger's foreign
// keys (commissions refer to the partner row); the re-key writes the new
// partner row first and deletes the old one last. It comes before the
// ledger's other sources, which then find nothing left to hash.
type payoutsSource struct {
	db     *sql.DB
	q      func(string) string
	ledger *payout.Ledger
	key    []byte
}

var _ dsar.TxSource = (*payoutsSource)(nil)

func (s *payoutsSource) Name() string { return "payouts" }

func (s *payoutsSource) DB() *sql.DB { return s.db }

func (s *payoutsSource) Export(ctx context.Context, subject string, emit func(dsar.Record) error) error {
	pays, err := s.ledger.History(ctx, subject)
	if err != nil {
		return err
	}
	for _, p := range pays {
		if err := emit(dsar.Record{"amount": p.Amount, "currency": p.Currency, "state": p.State, "created_at": p.CreatedAt}); err != nil {
			return err
		}
	}
	return nil
}

func (s *payoutsSource) Erase(ctx context.Context, subject string) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	n, err := s.EraseTx(ctx, tx, subject)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

func (s *payoutsSource) EraseTx(ctx context.Context, tx *sql.Tx, subject string) (int64, error) {
	var account string
	err := tx.QueryRowContext(ctx, s.q(`SELECT account FROM levqor_partners WHERE id = ?`), subject).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // not a partner, or already erased
	}
	if err != nil {
		return 0, err
	}
	return s.ledger.RekeyPartnerTx(ctx, tx, subject, dsar.Pseudonym(s.key, subject), dsar.Pseudonym(s.key, account))
}
