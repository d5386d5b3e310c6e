package payout

import (
	"github.com/levqor/levqor/internal/sqldialect"

	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/levqor/levqor/money"
)

// DefaultCommissionBasisPoints is the default commission: 20% (2000 basis points).
const DefaultCommissionBasisPoints = 2000

// Payout states.
const (
	StatePending   = "pending"   // created, commissions reserved, transfer not known to be made
	StateSent      = "sent"      // the provider accepted the transfer
	StateConfirmed = "confirmed" // confirmed later (e.g. a transfer webhook)
	StateFailed    = "failed"    // permanently failed; commissions released
)

// Errors.
var (
	ErrUnknownPartner = errors.New("payout: unknown partner")
	ErrNotFound       = errors.New("payout: no such payout")
)

// Ledger stores partners, commissions and payouts in SQL.
type Ledger struct {
	db *sql.DB
	q  func(string) string
}

// LedgerConfig configures a Ledger.
type LedgerConfig struct {
	// DB holds the ledger's tables (levqor_partners, levqor_commissions,
	// levqor_payouts; created if missing). Required; SQLite or PostgreSQL,
	// told apart by the driver. The Ledger never closes it.
	DB *sql.DB
}

// NewLedger validates cfg and creates the tables if needed.
func NewLedger(ctx context.Context, cfg LedgerConfig) (*Ledger, error) {
	db := cfg.DB
	if db == nil {
		return nil, errors.New("payout: LedgerConfig.DB is required")
	}
	dialect, err := sqldialect.Detect(db)
	if err != nil {
		return nil, fmt.Errorf("payout: %w", err)
	}
	l := &Ledger{db: db, q: dialect.Rebind}
	if err := dialect.CreateSchema(ctx, db, "payout",
		`CREATE TABLE IF NOT EXISTS levqor_partners (
			id TEXT PRIMARY KEY, account TEXT NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS levqor_commissions (
			id TEXT PRIMARY KEY, partner_id TEXT NOT NULL REFERENCES levqor_partners(id),
			source_ref TEXT NOT NULL UNIQUE, amount BIGINT NOT NULL CHECK (amount > 0),
			currency TEXT NOT NULL, earned_at TEXT NOT NULL, payout_id TEXT)`,
		`CREATE INDEX IF NOT EXISTS levqor_commissions_unpaid ON levqor_commissions (partner_id, currency, payout_id)`,
		`CREATE TABLE IF NOT EXISTS levqor_payouts (
			id TEXT PRIMARY KEY, partner_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
			state TEXT NOT NULL, transfer_id TEXT NOT NULL DEFAULT '', failure TEXT NOT NULL DEFAULT '',
			attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
			lease_owner TEXT NOT NULL DEFAULT '', lease_until TEXT NOT NULL DEFAULT '')`,
		`CREATE INDEX IF NOT EXISTS levqor_payouts_state ON levqor_payouts (state)`,
	); err != nil {
		return nil, fmt.Errorf("payout: create schema: %w", err)
	}
	return l, nil
}

// stampLayout is fixed-width, so stamps compare correctly as strings (leases).
const stampLayout = "2006-01-02T15:04:05.000000000Z"

func stamp(t time.Time) string { return t.UTC().Format(stampLayout) }

func parseStamp(s string) time.Time {
	t, _ := time.Parse(stampLayout, s)
	return t
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// AddPartner registers (or updates the account of) a partner.
func (l *Ledger) AddPartner(ctx context.Context, id, account string, now time.Time) error {
	if id == "" || account == "" {
		return errors.New("payout: partner id and account are required")
	}
	_, err := l.db.ExecContext(ctx, l.q(`INSERT INTO levqor_partners (id, account, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET account = excluded.account`), id, account, stamp(now))
	return err
}

// Commission is rate (basis points: 2000 = 20%) of a sale, rounded half up
// to the minor unit.
func Commission(sale int64, basisPoints int) int64 {
	return (sale*int64(basisPoints) + 5000) / 10000
}

// Accrue records a commission for partner, once per sourceRef (e.g. the
// invoice it was earned on): recording the same reference again is a no-op
// and returns false.
func (l *Ledger) Accrue(ctx context.Context, partnerID, sourceRef string, amount int64, currency string, at time.Time) (bool, error) {
	if amount <= 0 || !money.ValidCurrency(strings.ToUpper(currency)) || sourceRef == "" {
		return false, fmt.Errorf("payout: commission needs a positive amount, a currency and a source reference")
	}
	var one int
	if err := l.db.QueryRowContext(ctx, l.q(`SELECT 1 FROM levqor_partners WHERE id = ?`), partnerID).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("%w: %q", ErrUnknownPartner, partnerID)
		}
		return false, err
	}
	res, err := l.db.ExecContext(ctx, l.q(`INSERT INTO levqor_commissions (id, partner_id, source_ref, amount, currency, earned_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source_ref) DO NOTHING`),
		newID("com_"), partnerID, sourceRef, amount, strings.ToUpper(currency), stamp(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Payout is one payout row.
type Payout struct {
	ID         string    `json:"id"`
	PartnerID  string    `json:"partner_id"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	State      string    `json:"state"`
	TransferID string    `json:"transfer_id,omitempty"`
	Failure    string    `json:"failure,omitempty"`
	Attempts   int       `json:"attempts"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// LeaseOwner is the Run that holds a pending payout until LeaseUntil
	// (empty when none does).
	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// Money is the payout's amount as a money.Money.
func (p Payout) Money() money.Money { return money.New(p.Amount, p.Currency) }

const payoutCols = `id, partner_id, amount, currency, state, transfer_id, failure, attempts, created_at, updated_at, lease_owner, lease_until`

func scanPayout(sc interface{ Scan(...any) error }) (Payout, error) {
	var p Payout
	var created, updated, until string
	err := sc.Scan(&p.ID, &p.PartnerID, &p.Amount, &p.Currency, &p.State, &p.TransferID, &p.Failure, &p.Attempts, &created, &updated, &p.LeaseOwner, &until)
	p.CreatedAt, p.UpdatedAt = parseStamp(created), parseStamp(updated)
	if until != "" {
		p.LeaseUntil = parseStamp(until)
	}
	return p, err
}

// Partner is a registered partner.
type Partner struct {
	ID        string    `json:"id"`
	Account   string    `json:"account"` // Stripe Connect account (acct_...)
	CreatedAt time.Time `json:"created_at"`
}

// Partners lists every partner, oldest first.
func (l *Ledger) Partners(ctx context.Context) ([]Partner, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, account, created_at FROM levqor_partners ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Partner
	for rows.Next() {
		var p Partner
		var created string
		if err := rows.Scan(&p.ID, &p.Account, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = parseStamp(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// CommissionRecord is one recorded commission.
type CommissionRecord struct {
	ID        string    `json:"id"`
	PartnerID string    `json:"partner_id"`
	SourceRef string    `json:"source_ref"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	EarnedAt  time.Time `json:"earned_at"`
	PayoutID  string    `json:"payout_id,omitempty"` // empty while unpaid
}

// Commissions lists commissions, newest first; partnerID "" lists all.
func (l *Ledger) Commissions(ctx context.Context, partnerID string) ([]CommissionRecord, error) {
	q := `SELECT id, partner_id, source_ref, amount, currency, earned_at, COALESCE(payout_id, '') FROM levqor_commissions`
	var args []any
	if partnerID != "" {
		q += ` WHERE partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := l.db.QueryContext(ctx, l.q(q+` ORDER BY earned_at DESC, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CommissionRecord
	for rows.Next() {
		var c CommissionRecord
		var earned string
		if err := rows.Scan(&c.ID, &c.PartnerID, &c.SourceRef, &c.Amount, &c.Currency, &earned, &c.PayoutID); err != nil {
			return nil, err
		}
		c.EarnedAt = parseStamp(earned)
		out = append(out, c)
	}
	return out, rows.Err()
}

// History returns a partner's payouts, newest first.
func (l *Ledger) History(ctx context.Context, partnerID string) ([]Payout, error) {
	return l.payouts(ctx, `WHERE partner_id = ? ORDER BY created_at DESC`, partnerID)
}

// Payouts returns payouts in the given states (all when none given), oldest first.
func (l *Ledger) Payouts(ctx context.Context, states ...string) ([]Payout, error) {
	if len(states) == 0 {
		return l.payouts(ctx, `ORDER BY created_at`)
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", ")
	args := make([]any, len(states))
	for i, s := range states {
		args[i] = s
	}
	return l.payouts(ctx, `WHERE state IN (`+marks+`) ORDER BY created_at`, args...)
}

func (l *Ledger) payouts(ctx context.Context, where string, args ...any) ([]Payout, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT `+payoutCols+` FROM levqor_payouts `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Payout
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Balance is a partner's commissions in one currency.
type Balance struct {
	PartnerID string `json:"partner_id"`
	Currency  string `json:"currency"`
	Unpaid    int64  `json:"unpaid"`   // not reserved by any payout
	Reserved  int64  `json:"reserved"` // in a pending payout
	Paid      int64  `json:"paid"`     // in a sent or confirmed payout
}

// Balances sums every partner's commissions by state.
func (l *Ledger) Balances(ctx context.Context) ([]Balance, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT c.partner_id, c.currency,
		COALESCE(SUM(CASE WHEN c.payout_id IS NULL THEN c.amount END), 0),
		COALESCE(SUM(CASE WHEN p.state = 'pending' THEN c.amount END), 0),
		COALESCE(SUM(CASE WHEN p.state IN ('sent', 'confirmed') THEN c.amount END), 0)
		FROM levqor_commissions c LEFT JOIN levqor_payouts p ON p.id = c.payout_id
		GROUP BY c.partner_id, c.currency ORDER BY c.partner_id, c.currency`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Balance
	for rows.Next() {
		var b Balance
		if err := rows.Scan(&b.PartnerID, &b.Currency, &b.Unpaid, &b.Reserved, &b.Paid); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Confirm marks a sent payout confirmed (e.g. from a transfer webhook).
func (l *Ledger) Confirm(ctx context.Context, transferID string, now time.Time) error {
	res, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET state = 'confirmed', updated_at = ? WHERE transfer_id = ? AND state = 'sent'`), stamp(now), transferID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no sent payout with transfer %s", ErrNotFound, transferID)
	}
	return nil
}
