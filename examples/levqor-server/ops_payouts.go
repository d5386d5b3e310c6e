package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/payout"
)

// Exit codes of `payouts`.
const (
	payoutsDone    = 0 // everything due was paid
	payoutsFailed  = 1 // a payout failed permanently, or the run failed
	payoutsPending = 3 // payouts left pending: to retry, or leased by another run
)

// maxReadinessChecks bounds the accounts one payouts run asks Stripe
// about (refreshReadiness).
const maxReadinessChecks = 100

// refreshReadiness asks Stripe whether the partners owed a payout but not
// ready for transfers have finished onboarding: Stripe sends a connected
// account's account.updated only to a Connect webhook endpoint, so a
// missed, misrouted or refused event would otherwise leave them unpaid
// for good. Only partners with a balance due are asked about, at most
// maxReadinessChecks, drawn at random each run so that where there are
// more every one is asked in turn (partners who never finish onboarding
// would otherwise take every check, run after run); a failure is printed
// and changes nothing.
func refreshReadiness(ctx context.Context, env *cliEnv, rc payout.RunnerConfig, sc *stripe.Client) {
	rc.DryRun, rc.Progress = true, nil
	plan, err := payout.NewRunner(rc)
	if err != nil {
		return
	}
	rep, err := plan.Run(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, "payouts: could not list the partners not ready:", err)
		return
	}
	notReady := slices.Clone(rep.NotReady)
	rand.Shuffle(len(notReady), func(i, j int) { notReady[i], notReady[j] = notReady[j], notReady[i] })
	asked := map[string]bool{}
	for _, nr := range notReady {
		if len(asked) == maxReadinessChecks {
			break
		}
		if asked[nr.PartnerID] || dsar.IsPseudonym(nr.PartnerID) {
			continue
		}
		asked[nr.PartnerID] = true
		partner, err := rc.Ledger.Partner(ctx, nr.PartnerID)
		if err != nil {
			fmt.Fprintln(env.stderr, "payouts:", err)
			continue
		}
		acct, err := sc.V1Accounts.GetByID(ctx, partner.Account, nil)
		if err != nil {
			fmt.Fprintf(env.stderr, "payouts: partner %s: Stripe account %s: %s\n", partner.ID, partner.Account, stripeErrorText(err))
			continue
		}
		if !acct.PayoutsEnabled {
			continue
		}
		if err := rc.Ledger.SetPayoutsEnabled(ctx, partner.Account, true, time.Now()); err != nil {
			fmt.Fprintln(env.stderr, "payouts:", err)
			continue
		}
		fmt.Fprintf(env.stdout, "partner %s is ready at Stripe (its account.updated event never arrived)\n", partner.ID)
	}
}

func cmdPayouts(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) > 0 && (args[0] == "partners" || args[0] == "commissions") {
		return cmdPayoutsLedger(ctx, env, args[0], args[1:])
	}
	fs := newFlags(env, "payouts")
	dry := fs.Bool("dry-run", false, "print what would be paid, and the pending payouts a run would finish; change nothing")
	lease := fs.Duration("lease", payout.DefaultLease, "how long this run owns a pending payout; a crashed run's payouts are retried once it expires")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *lease <= 0 {
		fmt.Fprintln(env.stderr, "payouts: --lease must be positive")
		return 2
	}
	if env.cfg.StripeKey == "" && !*dry {
		fmt.Fprintln(env.stderr, "payouts: STRIPE_SECRET_KEY is not set (use --dry-run to preview)")
		return 2
	}
	db, ledger, err := openLedger(ctx, env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return payoutsFailed
	}
	defer db.Close()
	sc := stripeClient(env.cfg)
	p, err := payout.NewStripeTransfers(payout.StripeTransfersConfig{Client: sc})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	rc := payout.RunnerConfig{Ledger: ledger, Payouter: p, DryRun: *dry, Lease: *lease, Logger: env.log}
	if isTTY(env.stderr) {
		sent := 0
		rc.Progress = func(p payout.Payout) {
			sent++
			fmt.Fprintf(env.stderr, "\rpayouts: %d sent (last %s)", sent, p.ID)
		}
		defer fmt.Fprintln(env.stderr)
	}
	r, err := payout.NewRunner(rc)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	if !*dry {
		refreshReadiness(ctx, env, rc, sc)
	}
	rep, err := r.Run(ctx)
	_ = rep.WriteText(env.stdout)
	switch {
	case len(rep.Failed) > 0 || (err != nil && len(rep.Retrying) == 0):
		a := alert.Alert{Severity: alert.SeverityCritical, Title: "Payouts failed", Key: "payouts-failed",
			Fields: []alert.Field{{Key: "Sent", Value: strconv.Itoa(len(rep.Sent))}, {Key: "Failed", Value: strconv.Itoa(len(rep.Failed))}}}
		if err != nil {
			fmt.Fprintln(env.stderr, "payouts:", err)
			a.Message = err.Error()
		}
		for i, f := range rep.Failed {
			if i == 3 {
				a.Fields = append(a.Fields, alert.Field{Key: "More failed", Value: strconv.Itoa(len(rep.Failed) - 3)})
				break
			}
			a.Fields = append(a.Fields, alert.Field{Key: f.ID, Value: f.Failure})
		}
		if !*dry {
			opsAlert(ctx, env, a)
		}
		return payoutsFailed
	case len(rep.Retrying) > 0 || len(rep.InFlight) > 0:
		fmt.Fprintf(env.stderr, "payouts: %d left pending (%d to retry, %d held by another run); run again later\n",
			len(rep.Retrying)+len(rep.InFlight), len(rep.Retrying), len(rep.InFlight))
		return payoutsPending
	}
	return payoutsDone
}

func openLedger(ctx context.Context, cfg config) (*database, *payout.Ledger, error) {
	db, err := openServerDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	ledger, err := payout.NewLedger(ctx, payout.LedgerConfig{DB: db.DB})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, ledger, nil
}

// stripeAccount matches a Stripe Connect account id.
var stripeAccount = regexp.MustCompile(`^acct_[A-Za-z0-9]{1,64}$`)

// cmdPayoutsLedger is `payouts partners add|list` and `payouts
// commissions add|list`, through the payout.Ledger API.
func cmdPayoutsLedger(ctx context.Context, env *cliEnv, what string, args []string) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprintf(env.stderr, "usage: levqor-server payouts %s add|list [flags]\n", what)
		return 2
	}
	verb := args[0]
	fs := newFlags(env, "payouts")
	id := fs.String("id", "", "partner id (partners add)")
	account := fs.String("account", "", "Stripe Connect account, acct_... (partners add)")
	partner := fs.String("partner", "", "partner id (commissions add; filters commissions list)")
	amount := fs.Int64("amount", 0, "commission in minor units, e.g. 5000 for $50.00 or ¥5000 (commissions add)")
	currency := fs.String("currency", "", "ISO 4217 code, e.g. USD (commissions add)")
	ref := fs.String("ref", "", "source reference, e.g. the invoice id; the same reference is recorded once (commissions add)")
	asJSON := fs.Bool("json", false, "list as JSON")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	db, ledger, err := openLedger(ctx, env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	bad := func(msg string) int {
		fmt.Fprintf(env.stderr, "payouts %s %s: %s\n", what, verb, msg)
		return 2
	}
	switch what + " " + verb {
	case "partners add":
		return addPartner(ctx, env, ledger, *id, *account, bad)
	case "commissions add":
		return addCommission(ctx, env, ledger, *partner, *amount, *currency, *ref, bad)
	case "partners list":
		return listPartners(ctx, env, ledger, *asJSON)
	default:
		return listCommissions(ctx, env, ledger, *partner, *asJSON)
	}
}

func addPartner(ctx context.Context, env *cliEnv, ledger *payout.Ledger, id, account string, bad func(string) int) int {
	if id == "" || len(id) > 128 {
		return bad("--id is required (at most 128 characters)")
	}
	if !stripeAccount.MatchString(account) {
		return bad("--account must be a Stripe Connect account id like acct_1Nv0FGQ9RKHgCVdK")
	}
	if err := ledger.AddPartner(ctx, id, account, time.Now()); err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	fmt.Fprintf(env.stdout, "partner %s → %s\n", id, account)
	return 0
}

func addCommission(ctx context.Context, env *cliEnv, ledger *payout.Ledger, partner string, amount int64, currency, ref string, bad func(string) int) int {
	cur := strings.ToUpper(currency)
	switch {
	case partner == "":
		return bad("--partner is required")
	case amount <= 0 || amount > payout.MaxAmount:
		return bad(fmt.Sprintf("--amount must be 1 to %d minor units", int64(payout.MaxAmount)))
	case !money.ValidCurrency(cur):
		return bad("--currency must be a 3-letter ISO 4217 code")
	case ref == "" || len(ref) > 255:
		return bad("--ref is required (at most 255 characters)")
	}
	added, err := ledger.Accrue(ctx, partner, ref, amount, cur, time.Now())
	if errors.Is(err, payout.ErrUnknownPartner) {
		return bad(err.Error())
	}
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	if !added {
		fmt.Fprintf(env.stdout, "commission %s already recorded; nothing added\n", ref)
		return 0
	}
	fmt.Fprintf(env.stdout, "commission %s: %s for %s\n", ref, money.New(amount, cur), partner)
	return 0
}

func listPartners(ctx context.Context, env *cliEnv, ledger *payout.Ledger, asJSON bool) int {
	ps, err := ledger.Partners(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	if asJSON {
		return writeJSONOut(env, ps)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTNER\tACCOUNT\tSINCE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Account, p.CreatedAt.Format(time.DateOnly))
	}
	_ = tw.Flush()
	return 0
}

func listCommissions(ctx context.Context, env *cliEnv, ledger *payout.Ledger, partner string, asJSON bool) int {
	cs, err := ledger.Commissions(ctx, partner)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	if asJSON {
		return writeJSONOut(env, cs)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTNER\tAMOUNT\tREF\tEARNED\tPAYOUT")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.PartnerID, money.New(c.Amount, c.Currency), c.SourceRef, c.EarnedAt.Format(time.DateOnly), c.PayoutID)
	}
	_ = tw.Flush()
	return 0
}

func writeJSONOut(env *cliEnv, v any) int {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	return 0
}
