package payout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/money"
)

// Defaults for RunnerConfig.
const DefaultLease = 5 * time.Minute

// DefaultMinimumUSD is the default payout threshold: $50 (in cents).
const DefaultMinimumUSD = 5000

// DefaultMinimums returns the default payout thresholds per currency in
// minor units: USD 5000 ($50), a new map each call. Commissions in a
// currency without a minimum are never paid out (and are reported), rather
// than paid under a guessed threshold.
func DefaultMinimums() map[string]int64 { return map[string]int64{"USD": DefaultMinimumUSD} }

// step names the points of a payout where fault-injection tests stop a
// Run (export_test.go); not part of the API.
type step string

// Steps, in order.
const (
	stepReserved step = "reserved" // payout row created, commissions reserved (committed)
	stepPaid     step = "paid"     // the Payouter accepted the transfer (not yet recorded)
	stepRecorded step = "recorded" // the ledger says sent
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Ledger   *Ledger  // required
	Payouter Payouter // required
	// Minimums per currency (minor units; codes case-insensitive, each at
	// most once). Default DefaultMinimums() (USD 5000).
	Minimums map[string]int64
	// Lease is how long a Run owns a pending payout before another Run may
	// take it over. Default DefaultLease.
	Lease time.Duration
	// Owner identifies this Runner in leases. Default: a random id.
	Owner string
	// DryRun reports what would be paid and changes nothing.
	DryRun bool
	// Notifier receives a success summary and failures. Optional.
	Notifier alert.Notifier
	// Progress, if set, is called after each payout is recorded as sent,
	// for progress output. It must not block.
	Progress func(p Payout)
	// Logger and Now. Defaults slog.Default() and time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// Runner pays out commissions.
type Runner struct {
	cfg RunnerConfig
	// hook stops a Run after a step, as a crash would; set by tests only.
	hook func(s step, payoutID string) error
}

// NewRunner validates cfg.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Ledger == nil || cfg.Payouter == nil {
		return nil, errors.New("payout: RunnerConfig needs Ledger and Payouter")
	}
	if cfg.Minimums == nil {
		cfg.Minimums = DefaultMinimums()
	}
	norm := map[string]int64{}
	for cur, m := range cfg.Minimums {
		c := strings.ToUpper(cur)
		if !money.ValidCurrency(c) || m <= 0 {
			return nil, fmt.Errorf("payout: minimum %d for %q: need a 3-letter currency code and a positive amount", m, cur)
		}
		if _, dup := norm[c]; dup {
			// Which of the two would win depends on map order: refuse both.
			return nil, fmt.Errorf("payout: two minimums for %s (currency codes are case-insensitive)", c)
		}
		norm[c] = m
	}
	cfg.Minimums = norm
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Owner == "" {
		cfg.Owner = newID("run_")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg}, nil
}

// Planned is a payout a dry run would make.
type Planned struct {
	PartnerID string
	Amount    int64
	Currency  string
}

// Report is what a Run did.
type Report struct {
	Planned  []Planned // dry run only
	Pending  []Payout  // dry run only: pending payouts a Run would finish
	Sent     []Payout
	Retrying []Payout // retryable failure: still pending, retried by the next Run
	Failed   []Payout // permanent failure: commissions released
	// InFlight lists pending payouts another Run holds (a running one, or
	// one that crashed and whose lease has not yet expired): not finished
	// by this Run, retried once LeaseUntil has passed.
	InFlight []Payout
	// NotReady lists balances that reached the minimum but whose partner's
	// account is not confirmed ready for transfers (onboarding not
	// finished, or re-keyed: see Ledger.RekeyPartnerTx).
	NotReady []Planned
	// NoMinimum lists currencies with unpaid commissions but no minimum configured.
	NoMinimum []string
}

// Done reports whether nothing was left unfinished: no failure, no payout
// to retry and none held by another Run.
func (r Report) Done() bool {
	return len(r.Failed) == 0 && len(r.Retrying) == 0 && len(r.InFlight) == 0
}

// WriteText prints the report as a table.
func (r Report) WriteText(w io.Writer) error {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tPARTNER\tAMOUNT\tPAYOUT\tNOTE")
	for _, p := range r.Planned {
		fmt.Fprintf(tw, "would pay\t%s\t%s\t\t\n", p.PartnerID, money.New(p.Amount, p.Currency))
	}
	for _, p := range r.Pending {
		note := "would finish (attempt " + strconv.Itoa(p.Attempts+1) + ")"
		if !p.LeaseUntil.IsZero() {
			note += ", leased by " + p.LeaseOwner + " until " + p.LeaseUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "pending\t%s\t%s\t%s\t%s\n", p.PartnerID, p.Money(), p.ID, note)
	}
	for _, p := range r.InFlight {
		fmt.Fprintf(tw, "in flight\t%s\t%s\t%s\tleased by %s until %s\n", p.PartnerID, p.Money(), p.ID, p.LeaseOwner, p.LeaseUntil.UTC().Format(time.RFC3339))
	}
	for _, group := range []struct {
		label string
		list  []Payout
	}{{"sent", r.Sent}, {"retrying", r.Retrying}, {"failed", r.Failed}} {
		for _, p := range group.list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", group.label, p.PartnerID, p.Money(), p.ID, p.Failure)
		}
	}
	for _, p := range r.NotReady {
		fmt.Fprintf(tw, "not ready\t%s\t%s\t\taccount not confirmed ready for transfers (onboarding, or re-keyed)\n", p.PartnerID, money.New(p.Amount, p.Currency))
	}
	for _, cur := range r.NoMinimum {
		fmt.Fprintf(tw, "no minimum\t\t%s\t\t\n", cur)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// errStopped marks a Run stopped by a test's hook.
var errStopped = errors.New("payout: run stopped by hook")

// Run pays every eligible partner; see the package documentation for the
// guarantees. It returns what it did and the errors it met; a payout that
// failed does not stop the others.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	var rep Report
	var errs []error
	// 1. Finish what an earlier Run left pending.
	pending, err := r.cfg.Ledger.Payouts(ctx, StatePending)
	if err != nil {
		return rep, err
	}
	if r.cfg.DryRun {
		rep.Pending = pending
	} else {
		for _, p := range pending {
			ok, err := r.lease(ctx, p.ID)
			if err != nil {
				return rep, err
			}
			if !ok {
				rep.InFlight = append(rep.InFlight, p) // another Run holds it
				continue
			}
			if err := r.process(ctx, p, &rep); err != nil {
				if errors.Is(err, errStopped) {
					return rep, err
				}
				errs = append(errs, err)
			}
		}
	}
	// 2. Reserve and pay new balances.
	due, notReady, noMin, err := r.eligible(ctx)
	if err != nil {
		return rep, err
	}
	rep.NoMinimum, rep.NotReady = noMin, notReady
	for _, d := range due {
		if r.cfg.DryRun {
			rep.Planned = append(rep.Planned, d)
			continue
		}
		p, ok, err := r.reserve(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // another Run reserved these commissions first
		}
		if err := r.at(stepReserved, p.ID); err != nil {
			return rep, err
		}
		if err := r.process(ctx, p, &rep); err != nil {
			if errors.Is(err, errStopped) {
				return rep, err
			}
			errs = append(errs, err)
		}
	}
	r.summarise(ctx, rep)
	return rep, errors.Join(errs...)
}

func (r *Runner) at(s step, id string) error {
	if r.hook == nil {
		return nil
	}
	if err := r.hook(s, id); err != nil {
		return fmt.Errorf("%w at %s of %s: %w", errStopped, s, id, err)
	}
	return nil
}

// eligible returns the balances due (at least the minimum, account
// ready), those due but waiting for their partner's account, and the
// currencies without a minimum.
func (r *Runner) eligible(ctx context.Context) (due, notReady []Planned, noMin []string, err error) {
	rows, err := r.cfg.Ledger.db.QueryContext(ctx, `SELECT e.partner_id, e.currency, SUM(e.amount), MIN(p.payouts_enabled)
		FROM `+ledgerEntries+` e JOIN levqor_partners p ON p.id = e.partner_id
		WHERE e.payout_id IS NULL GROUP BY e.partner_id, e.currency ORDER BY e.partner_id, e.currency`)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	missing := map[string]bool{}
	for rows.Next() {
		var p Planned
		var enabled bool
		if err := rows.Scan(&p.PartnerID, &p.Currency, &p.Amount, &enabled); err != nil {
			return nil, nil, nil, err
		}
		min, ok := r.cfg.Minimums[p.Currency]
		if !ok {
			missing[p.Currency] = true
			continue
		}
		switch {
		case p.Amount < min:
		case !enabled:
			notReady = append(notReady, p)
		default:
			due = append(due, p)
		}
	}
	for cur := range missing {
		noMin = append(noMin, cur)
	}
	sort.Strings(noMin)
	return due, notReady, noMin, rows.Err()
}

// reserve creates the pending payout and attaches the partner's unpaid
// commissions to it in one transaction. ok is false when another Run
// reserved them first.
func (r *Runner) reserve(ctx context.Context, d Planned) (Payout, bool, error) {
	l := r.cfg.Ledger
	now := r.cfg.Now()
	p := Payout{ID: newID("po_"), PartnerID: d.PartnerID, Currency: d.Currency, State: StatePending, CreatedAt: now, UpdatedAt: now}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return p, false, err
	}
	defer func() { _ = tx.Rollback() }()
	// Commissions and reversals are reserved together: the payout is
	// their net sum, checked against the minimum again below (a reversal
	// may have arrived since eligible).
	for _, table := range []string{"levqor_commissions", "levqor_reversals"} {
		if _, err := tx.ExecContext(ctx, l.q(`UPDATE `+table+` SET payout_id = ? WHERE partner_id = ? AND currency = ? AND payout_id IS NULL`),
			p.ID, d.PartnerID, d.Currency); err != nil {
			return p, false, fmt.Errorf("payout: reserve: %w", err)
		}
	}
	if err := tx.QueryRowContext(ctx, l.q(`SELECT COALESCE(SUM(amount), 0) FROM `+ledgerEntries+` e WHERE payout_id = ?`), p.ID).Scan(&p.Amount); err != nil {
		return p, false, fmt.Errorf("payout: reserve: %w", err)
	}
	if p.Amount < r.cfg.Minimums[d.Currency] {
		return p, false, nil // raced: someone else took them
	}
	if _, err := tx.ExecContext(ctx, l.q(`INSERT INTO levqor_payouts (id, partner_id, amount, currency, state, created_at, updated_at, lease_owner, lease_until)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)`),
		p.ID, p.PartnerID, p.Amount, p.Currency, stamp(now), stamp(now), r.cfg.Owner, stamp(now.Add(r.cfg.Lease))); err != nil {
		return p, false, fmt.Errorf("payout: reserve: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return p, false, fmt.Errorf("payout: reserve: %w", err)
	}
	return p, true, nil
}

// lease takes a pending payout whose lease has expired.
func (r *Runner) lease(ctx context.Context, id string) (bool, error) {
	l := r.cfg.Ledger
	now := r.cfg.Now()
	res, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND state = 'pending' AND (lease_until < ? OR lease_owner = ?)`),
		r.cfg.Owner, stamp(now.Add(r.cfg.Lease)), id, stamp(now), r.cfg.Owner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (r *Runner) process(ctx context.Context, p Payout, rep *Report) error {
	l := r.cfg.Ledger
	var account string
	if err := l.db.QueryRowContext(ctx, l.q(`SELECT account FROM levqor_partners WHERE id = ?`), p.PartnerID).Scan(&account); err != nil {
		return fmt.Errorf("payout %s: partner %s: %w", p.ID, p.PartnerID, err)
	}
	if _, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET attempts = attempts + 1, updated_at = ? WHERE id = ?`), stamp(r.cfg.Now()), p.ID); err != nil {
		return err
	}
	transferID := ""
	if p.Attempts > 0 {
		// An earlier attempt may have paid before the crash.
		id, found, err := r.cfg.Payouter.Find(ctx, p.ID)
		if err != nil {
			return r.failed(ctx, p, err, rep)
		}
		if found {
			transferID = id
		}
	}
	if transferID == "" {
		id, err := r.cfg.Payouter.Pay(ctx, Transfer{
			PayoutID: p.ID, Destination: account, Amount: p.Amount, Currency: p.Currency,
			Description: "Levqor partner commission " + p.ID,
		})
		if err != nil {
			return r.failed(ctx, p, err, rep)
		}
		transferID = id
	}
	if err := r.at(stepPaid, p.ID); err != nil {
		return err
	}
	now := r.cfg.Now()
	if _, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET state = 'sent', transfer_id = ?, failure = '', lease_owner = '', lease_until = '', updated_at = ?
		WHERE id = ? AND state = 'pending'`), transferID, stamp(now), p.ID); err != nil {
		return fmt.Errorf("payout %s: paid as %s but not recorded (the next Run will find it): %w", p.ID, transferID, err)
	}
	p.State, p.TransferID, p.UpdatedAt = StateSent, transferID, now
	rep.Sent = append(rep.Sent, p)
	r.cfg.Logger.InfoContext(ctx, "payout: sent", "payout", p.ID, "partner", p.PartnerID, "amount", p.Amount, "currency", p.Currency, "transfer", transferID)
	if r.cfg.Progress != nil {
		r.cfg.Progress(p)
	}
	return r.at(stepRecorded, p.ID)
}

func (r *Runner) failed(ctx context.Context, p Payout, cause error, rep *Report) error {
	l := r.cfg.Ledger
	now := r.cfg.Now()
	if IsRetryable(cause) {
		// Keep it pending (same id, same idempotency key) and free the
		// lease so the next Run retries at once.
		_, err := l.db.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET failure = ?, lease_owner = '', lease_until = '', updated_at = ? WHERE id = ?`),
			cause.Error(), stamp(now), p.ID)
		p.Failure = cause.Error()
		rep.Retrying = append(rep.Retrying, p)
		r.cfg.Logger.WarnContext(ctx, "payout: will retry", "payout", p.ID, "partner", p.PartnerID, "err", cause)
		return errors.Join(fmt.Errorf("payout %s: %w", p.ID, cause), err)
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, l.q(`UPDATE levqor_payouts SET state = 'failed', failure = ?, lease_owner = '', lease_until = '', updated_at = ? WHERE id = ? AND state = 'pending'`),
		cause.Error(), stamp(now), p.ID); err != nil {
		return err
	}
	for _, table := range []string{"levqor_commissions", "levqor_reversals"} {
		if _, err := tx.ExecContext(ctx, l.q(`UPDATE `+table+` SET payout_id = NULL WHERE payout_id = ?`), p.ID); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.State, p.Failure = StateFailed, cause.Error()
	rep.Failed = append(rep.Failed, p)
	r.cfg.Logger.ErrorContext(ctx, "payout: failed permanently; commissions released", "payout", p.ID, "partner", p.PartnerID, "err", cause)
	r.notify(ctx, alert.Alert{
		Severity: alert.SeverityCritical, Title: "Payout to " + p.PartnerID + " failed", Message: cause.Error(), Key: "payout-failed|" + p.ID,
		Fields: []alert.Field{{Key: "Amount", Value: p.Money().String()}, {Key: "Payout", Value: p.ID}, {Key: "Commissions", Value: "released; they will be paid by a later run once fixed"}},
	})
	return fmt.Errorf("payout %s: %w", p.ID, cause)
}

func (r *Runner) summarise(ctx context.Context, rep Report) {
	if len(rep.Sent) == 0 && len(rep.Retrying) == 0 {
		return
	}
	totals := map[string]int64{}
	for _, p := range rep.Sent {
		totals[p.Currency] += p.Amount
	}
	var parts []string
	for cur, v := range totals {
		parts = append(parts, money.New(v, cur).String())
	}
	sort.Strings(parts)
	a := alert.Alert{Severity: alert.SeveritySuccess, Title: "Partner payouts: " + strconv.Itoa(len(rep.Sent)) + " sent", Key: "payout-run|" + r.cfg.Owner,
		Fields: []alert.Field{{Key: "Total", Value: strings.Join(parts, ", ")}}}
	if len(rep.Retrying) > 0 {
		a.Severity = alert.SeverityWarning
		a.Fields = append(a.Fields, alert.Field{Key: "Retrying", Value: strconv.Itoa(len(rep.Retrying)) + " (temporary errors; next run retries)"})
	}
	r.notify(ctx, a)
}

func (r *Runner) notify(ctx context.Context, a alert.Alert) {
	if r.cfg.Notifier == nil {
		return
	}
	a.Time = r.cfg.Now()
	if err := r.cfg.Notifier.Notify(ctx, a); err != nil {
		r.cfg.Logger.ErrorContext(ctx, "payout: alert failed", "err", err)
	}
}
