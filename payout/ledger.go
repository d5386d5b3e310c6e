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
	// ErrAmount: a commission that is not positive or exceeds MaxAmount.
	ErrAmount = errors.New("payout: commission amount out of range")
)

// MaxAmount is the largest commission Accrue records, in minor units: the
// largest amount Stripe accepts in any currency (twelve digits, for IDR).
// A larger one is a typo, and a few of them summed would overflow 64 bits
// and fail the payout run of every partner.
const MaxAmount = 999_999_999_999

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
		// Partners registered before onboarding existed were added by an
		// operator who knew their account: they stay ready (default 1).
		`ALTER TABLE levqor_partners ADD COLUMN IF NOT EXISTS payouts_enabled INTEGER NOT NULL DEFAULT 1`,
		// When the provider last said whether payouts are enabled: older
		// news (a webhook delivered late) is ignored.
		`ALTER TABLE levqor_partners ADD COLUMN IF NOT EXISTS payouts_updated_at TEXT NOT NULL DEFAULT ''`,
		// Reversals (refunds) are stored as positive amounts subtracted
		// from the partner's balance, so a ledger created before they
		// existed (commissions CHECK amount > 0) needs no table rebuild.
		`CREATE TABLE IF NOT EXISTS levqor_reversals (
			id TEXT PRIMARY KEY, partner_id TEXT NOT NULL REFERENCES levqor_partners(id),
			commission_ref TEXT NOT NULL REFERENCES levqor_commissions(source_ref),
			source_ref TEXT NOT NULL UNIQUE, amount BIGINT NOT NULL CHECK (amount > 0),
			currency TEXT NOT NULL, reversed_at TEXT NOT NULL, payout_id TEXT)`,
		`CREATE INDEX IF NOT EXISTS levqor_reversals_unpaid ON levqor_reversals (partner_id, currency, payout_id)`,
		`CREATE INDEX IF NOT EXISTS levqor_reversals_commission ON levqor_reversals (commission_ref)`,
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

// AddPartner registers (or updates the account of) a partner whose
// account is ready to receive transfers (one an operator has checked); an
// existing partner, onboarding or not, is ready afterwards. A partner
// still onboarding is added with AddOnboardingPartner.
func (l *Ledger) AddPartner(ctx context.Context, id, account string, now time.Time) error {
	return l.addPartner(ctx, l.db, id, account, true, now)
}

// AddOnboardingPartner registers a partner whose account cannot receive
// transfers yet (Stripe Connect onboarding not finished): commissions
// accrue, but Run pays nothing until SetPayoutsEnabled turns the account
// on. Adding an existing partner again with the same account changes
// nothing; with another account, the partner is not ready until
// SetPayoutsEnabled confirms it.
func (l *Ledger) AddOnboardingPartner(ctx context.Context, id, account string, now time.Time) error {
	return l.addPartner(ctx, l.db, id, account, false, now)
}

// AddOnboardingPartnerTx is AddOnboardingPartner inside tx, the caller's
// transaction: a sign-up that must land together with rows of its own (a
// referral code), or not at all when the person's account went away
// meanwhile.
func (l *Ledger) AddOnboardingPartnerTx(ctx context.Context, tx *sql.Tx, id, account string, now time.Time) error {
	return l.addPartner(ctx, tx, id, account, false, now)
}

// flag is a boolean column's value (INTEGER 0/1 on both engines).
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// execer is what addPartner writes through: the database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (l *Ledger) addPartner(ctx context.Context, db execer, id, account string, ready bool, now time.Time) error {
	if id == "" || account == "" {
		return errors.New("payout: partner id and account are required")
	}
	// Again for an existing partner: AddPartner's account is ready (the
	// operator checked it now, so news older than now changes nothing);
	// AddOnboardingPartner keeps the readiness of the same account (a
	// retried sign-up) and drops it, with the news about the old account,
	// for another one, which is unconfirmed.
	checked := ""
	if ready {
		checked = stamp(now)
	}
	_, err := db.ExecContext(ctx, l.q(`INSERT INTO levqor_partners (id, account, created_at, payouts_enabled, payouts_updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET account = excluded.account,
			payouts_enabled = CASE WHEN excluded.payouts_enabled = 1 OR levqor_partners.account = excluded.account
				THEN levqor_partners.payouts_enabled | excluded.payouts_enabled ELSE 0 END,
			payouts_updated_at = CASE WHEN excluded.payouts_enabled = 1 THEN excluded.payouts_updated_at
				WHEN levqor_partners.account = excluded.account THEN levqor_partners.payouts_updated_at ELSE '' END`),
		id, account, stamp(now), flag(ready), checked)
	return err
}

// SetPayoutsEnabled records whether the partner holding account can
// receive transfers, as the provider said at the time at (Stripe's
// payouts_enabled in account.updated, and the event's creation time).
// Webhooks arrive out of order: news older than the last recorded for the
// account changes nothing. ErrUnknownPartner if no partner holds account.
func (l *Ledger) SetPayoutsEnabled(ctx context.Context, account string, enabled bool, at time.Time) error {
	v := flag(enabled)
	// One conditional statement: two updates racing cannot leave the
	// older one's value.
	res, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_partners SET payouts_enabled = ?, payouts_updated_at = ?
		WHERE account = ? AND payouts_updated_at <= ?`), v, stamp(at), account, stamp(at))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var one int
	if err := l.db.QueryRowContext(ctx, l.q(`SELECT 1 FROM levqor_partners WHERE account = ?`), account).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no partner with account %q", ErrUnknownPartner, account)
	} else if err != nil {
		return err
	}
	return nil // stale news
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
	if amount <= 0 || amount > MaxAmount {
		return false, fmt.Errorf("%w: %d minor units (1 to %d)", ErrAmount, amount, int64(MaxAmount))
	}
	if !money.ValidCurrency(strings.ToUpper(currency)) || sourceRef == "" {
		return false, fmt.Errorf("payout: commission needs a currency and a source reference")
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

// RekeyPartnerTx moves partner oldID, with its commissions, reversals
// and payouts, to newID and newAccount, inside tx (the caller's, e.g. a
// data-subject erasure replacing the person's id by a pseudonym). The
// partner row under the new id is written before the rows that refer to
// it and the old one deleted after, so foreign keys hold at every
// statement on both engines. The partner under newID is not ready for
// payouts until SetPayoutsEnabled says its account is: a new account is
// unconfirmed, and an erasure's pseudonym is no account at all (a Run
// would otherwise try, and fail, to pay it every time). It returns the
// rows changed (0 when oldID is not a partner: erasing twice changes
// nothing).
func (l *Ledger) RekeyPartnerTx(ctx context.Context, tx *sql.Tx, oldID, newID, newAccount string) (int64, error) {
	if oldID == "" || newID == "" || oldID == newID {
		return 0, errors.New("payout: re-key needs two different partner ids")
	}
	res, err := tx.ExecContext(ctx, l.q(`INSERT INTO levqor_partners (id, account, created_at, payouts_enabled, payouts_updated_at)
		SELECT ?, ?, created_at, 0, payouts_updated_at FROM levqor_partners WHERE id = ?`), newID, newAccount, oldID)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, err
	}
	total := int64(1)
	for _, table := range []string{"levqor_commissions", "levqor_reversals", "levqor_payouts"} {
		res, err := tx.ExecContext(ctx, l.q(`UPDATE `+table+` SET partner_id = ? WHERE partner_id = ?`), newID, oldID)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += n
	}
	if _, err := tx.ExecContext(ctx, l.q(`DELETE FROM levqor_partners WHERE id = ?`), oldID); err != nil {
		return 0, err
	}
	return total, nil
}

// Reverse takes back a commission, wholly or in part (a refund), so that
// the total reversed against the commission recorded for commissionRef
// becomes total, capped at the commission itself. It records the
// difference (none if earlier reversals already reach total) under
// reversalRef, once: the same reversalRef again records nothing. The
// reversal is subtracted from the partner's next payout in the
// commission's currency: an unpaid commission nets to nothing, one already
// paid leaves a negative balance carried into later payouts. It returns
// the amount recorded; ErrNotFound when no commission has commissionRef.
//
// Totals rather than increments make a repeated or reordered refund
// notification harmless: each states the refunded total so far.
func (l *Ledger) Reverse(ctx context.Context, commissionRef, reversalRef string, total int64, at time.Time) (int64, error) {
	if commissionRef == "" || reversalRef == "" || total < 0 {
		return 0, errors.New("payout: a reversal needs a commission reference, its own reference and a total ≥ 0")
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	// Writing the commission's row first takes its lock on PostgreSQL and
	// the write lock on SQLite: reversals of one commission run one at a
	// time, so two cannot both see the same reversed sum.
	res, err := tx.ExecContext(ctx, l.q(`UPDATE levqor_commissions SET source_ref = source_ref WHERE source_ref = ?`), commissionRef)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 0 {
		return 0, fmt.Errorf("%w: no commission %q", ErrNotFound, commissionRef)
	}
	var partner, currency string
	var amount, reversed int64
	if err := tx.QueryRowContext(ctx, l.q(`SELECT c.partner_id, c.currency, c.amount,
		(SELECT COALESCE(SUM(r.amount), 0) FROM levqor_reversals r WHERE r.commission_ref = c.source_ref)
		FROM levqor_commissions c WHERE c.source_ref = ?`), commissionRef).Scan(&partner, &currency, &amount, &reversed); err != nil {
		return 0, err
	}
	diff := min(total, amount) - reversed
	if diff <= 0 {
		return 0, nil
	}
	res, err = tx.ExecContext(ctx, l.q(`INSERT INTO levqor_reversals (id, partner_id, commission_ref, source_ref, amount, currency, reversed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_ref) DO NOTHING`),
		newID("rev_"), partner, commissionRef, reversalRef, diff, currency, stamp(at))
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, err
	}
	return diff, tx.Commit()
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
	// PayoutsEnabled is false while the account cannot receive transfers
	// (onboarding not finished): Run pays such a partner nothing.
	PayoutsEnabled bool `json:"payouts_enabled"`
}

// Partners lists every partner, oldest first.
func (l *Ledger) Partners(ctx context.Context) ([]Partner, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, account, created_at, payouts_enabled FROM levqor_partners ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Partner
	for rows.Next() {
		var p Partner
		var created string
		if err := rows.Scan(&p.ID, &p.Account, &created, &p.PayoutsEnabled); err != nil {
			return nil, err
		}
		p.CreatedAt = parseStamp(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// Partner returns one partner; ErrUnknownPartner if there is none.
func (l *Ledger) Partner(ctx context.Context, id string) (Partner, error) {
	p := Partner{ID: id}
	var created string
	err := l.db.QueryRowContext(ctx, l.q(`SELECT account, created_at, payouts_enabled FROM levqor_partners WHERE id = ?`), id).Scan(&p.Account, &created, &p.PayoutsEnabled)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: %q", ErrUnknownPartner, id)
	}
	p.CreatedAt = parseStamp(created)
	return p, err
}

// CommissionRecord is one recorded commission, or a reversal of one.
type CommissionRecord struct {
	ID        string    `json:"id"`
	PartnerID string    `json:"partner_id"`
	SourceRef string    `json:"source_ref"`
	Amount    int64     `json:"amount"` // negative for a reversal
	Currency  string    `json:"currency"`
	EarnedAt  time.Time `json:"earned_at"`
	PayoutID  string    `json:"payout_id,omitempty"` // empty while unpaid
	// Reverses is, for a reversal, the SourceRef of the commission it
	// takes back; empty for a commission.
	Reverses string `json:"reverses,omitempty"`
}

// Commissions lists commissions and their reversals, newest first;
// partnerID "" lists all.
func (l *Ledger) Commissions(ctx context.Context, partnerID string) ([]CommissionRecord, error) {
	return l.commissions(ctx, partnerID, "")
}

// CommissionsPage is one page of a partner's Commissions: at most limit
// records after skipping offset.
func (l *Ledger) CommissionsPage(ctx context.Context, partnerID string, limit, offset int) ([]CommissionRecord, error) {
	if limit < 1 || offset < 0 {
		return nil, errors.New("payout: a page needs limit ≥ 1 and offset ≥ 0")
	}
	return l.commissions(ctx, partnerID, fmt.Sprintf(" LIMIT %d OFFSET %d", limit, offset))
}

func (l *Ledger) commissions(ctx context.Context, partnerID, page string) ([]CommissionRecord, error) {
	q := `SELECT id, partner_id, source_ref, amount, currency, earned_at, COALESCE(payout_id, ''), '' FROM levqor_commissions` +
		` UNION ALL SELECT id, partner_id, source_ref, -amount, currency, reversed_at, COALESCE(payout_id, ''), commission_ref FROM levqor_reversals`
	var args []any
	if partnerID != "" {
		q = `SELECT * FROM (` + q + `) x WHERE partner_id = ?`
		args = append(args, partnerID)
	}
	rows, err := l.db.QueryContext(ctx, l.q(q+` ORDER BY 6 DESC, 1`+page), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CommissionRecord
	for rows.Next() {
		var c CommissionRecord
		var earned string
		if err := rows.Scan(&c.ID, &c.PartnerID, &c.SourceRef, &c.Amount, &c.Currency, &earned, &c.PayoutID, &c.Reverses); err != nil {
			return nil, err
		}
		c.EarnedAt = parseStamp(earned)
		out = append(out, c)
	}
	return out, rows.Err()
}

// History returns a partner's payouts, newest first.
func (l *Ledger) History(ctx context.Context, partnerID string) ([]Payout, error) {
	return l.payouts(ctx, `WHERE partner_id = ? ORDER BY created_at DESC, id`, partnerID)
}

// HistoryPage is one page of History: at most limit payouts after
// skipping offset.
func (l *Ledger) HistoryPage(ctx context.Context, partnerID string, limit, offset int) ([]Payout, error) {
	if limit < 1 || offset < 0 {
		return nil, errors.New("payout: a page needs limit ≥ 1 and offset ≥ 0")
	}
	return l.payouts(ctx, fmt.Sprintf(`WHERE partner_id = ? ORDER BY created_at DESC, id LIMIT %d OFFSET %d`, limit, offset), partnerID)
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

// Balance is a partner's commissions in one currency, net of reversals.
type Balance struct {
	PartnerID string `json:"partner_id"`
	Currency  string `json:"currency"`
	Unpaid    int64  `json:"unpaid"`   // not reserved by any payout; negative when reversals exceed it
	Reserved  int64  `json:"reserved"` // in a pending payout
	Paid      int64  `json:"paid"`     // in a sent or confirmed payout
}

// ledgerEntries is every commission (positive) and reversal (negative).
const ledgerEntries = `(SELECT partner_id, currency, amount, payout_id FROM levqor_commissions
	UNION ALL SELECT partner_id, currency, -amount, payout_id FROM levqor_reversals)`

// Balances sums every partner's commissions and reversals by state.
func (l *Ledger) Balances(ctx context.Context) ([]Balance, error) {
	return l.balances(ctx, "")
}

// PartnerBalances is Balances for one partner.
func (l *Ledger) PartnerBalances(ctx context.Context, partnerID string) ([]Balance, error) {
	return l.balances(ctx, partnerID)
}

func (l *Ledger) balances(ctx context.Context, partnerID string) ([]Balance, error) {
	where, args := "", []any{}
	if partnerID != "" {
		where, args = ` WHERE c.partner_id = ?`, append(args, partnerID)
	}
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT c.partner_id, c.currency,
		COALESCE(SUM(CASE WHEN c.payout_id IS NULL THEN c.amount END), 0),
		COALESCE(SUM(CASE WHEN p.state = 'pending' THEN c.amount END), 0),
		COALESCE(SUM(CASE WHEN p.state IN ('sent', 'confirmed') THEN c.amount END), 0)
		FROM `+ledgerEntries+` c LEFT JOIN levqor_payouts p ON p.id = c.payout_id`+where+`
		GROUP BY c.partner_id, c.currency ORDER BY c.partner_id, c.currency`), args...)
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
