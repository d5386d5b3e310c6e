package payout_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/payout"
)

type alerts struct {
	mu  sync.Mutex
	got []alert.Alert
}

func (a *alerts) Notify(_ context.Context, al alert.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
	return nil
}

var quiet = slog.New(slog.DiscardHandler)

type world struct {
	reopen func() *sql.DB // another connection pool on the same database
	db     *sql.DB
	ledger *payout.Ledger
	stripe *fakeStripe
	clk    *testclock.Clock
}

// newWorld: partners p1..pN with connected accounts acct_1..acct_N.
// engine opens a database: SQLite files and a real PostgreSQL.
type engine struct {
	name string
	open func(t *testing.T) (reopen func() *sql.DB)
}

var engines = []engine{
	{"sqlite", func(t *testing.T) func() *sql.DB {
		path := sqlitetest.Path(t)
		return func() *sql.DB { return sqlitetest.Open(t, path) }
	}},
	{"postgres", func(t *testing.T) func() *sql.DB {
		url := pgtest.NewDatabase(t)
		return func() *sql.DB {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		}
	}},
}

// forEngines runs f once per engine, as subtests.
func forEngines(t *testing.T, f func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func newWorld(t *testing.T, e engine, partners int) *world {
	t.Helper()
	w := &world{reopen: e.open(t), clk: testclock.New(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))}
	w.db = w.reopen()
	var err error
	if w.ledger, err = payout.NewLedger(context.Background(), payout.LedgerConfig{DB: w.db}); err != nil {
		t.Fatal(err)
	}
	var accts []string
	for i := 1; i <= partners; i++ {
		accts = append(accts, fmt.Sprintf("acct_%d", i))
		if err := w.ledger.AddPartner(context.Background(), fmt.Sprintf("p%d", i), accts[i-1], w.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w.stripe = newFakeStripe(t, accts...)
	return w
}

func (w *world) accrue(t *testing.T, partner, ref string, amount int64, cur string) {
	t.Helper()
	if _, err := w.ledger.Accrue(context.Background(), partner, ref, amount, cur, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
}

func (w *world) runner(t *testing.T, cfg payout.RunnerConfig) *payout.Runner {
	t.Helper()
	if cfg.Ledger == nil {
		cfg.Ledger = w.ledger
	}
	if cfg.Payouter == nil {
		cfg.Payouter = stripePayouter(w.stripe)
	}
	cfg.Now, cfg.Logger = w.clk.Now, quiet
	r, err := payout.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// balanced checks the ledger against the provider: every commission is
// unpaid or in exactly one sent payout, and Stripe received exactly the
// sent amounts.
func (w *world) balanced(t *testing.T, wantPaid map[string]int64) {
	t.Helper()
	if got := w.stripe.paid(); fmt.Sprint(got) != fmt.Sprint(wantPaid) {
		t.Fatalf("stripe received %v, want %v", got, wantPaid)
	}
	sent, _ := w.ledger.Payouts(context.Background(), payout.StateSent)
	if len(sent) != w.stripe.count() {
		t.Fatalf("%d payouts sent in the ledger, %d transfers at Stripe", len(sent), w.stripe.count())
	}
	bals, _ := w.ledger.Balances(context.Background())
	for _, b := range bals {
		if b.Reserved != 0 {
			t.Fatalf("commissions left reserved: %+v", b)
		}
		if got := wantPaid["acct_"+strings.TrimPrefix(b.PartnerID, "p")+" "+b.Currency]; got != b.Paid {
			t.Fatalf("ledger says %s paid %d %s, Stripe got %d", b.PartnerID, b.Paid, b.Currency, got)
		}
	}
}

func TestRunThresholdsAndCurrencies(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 4)
		w.accrue(t, "p1", "inv-1", 3000, "usd")
		w.accrue(t, "p1", "inv-2", 3000, "USD") // $60 ≥ $50
		w.accrue(t, "p2", "inv-3", 4999, "USD") // just under
		w.accrue(t, "p3", "inv-4", 6000, "EUR") // EUR minimum configured below
		w.accrue(t, "p3", "inv-5", 5500, "USD")
		w.accrue(t, "p4", "inv-6", 90000, "GBP") // no GBP minimum: not paid
		if ok, _ := w.ledger.Accrue(context.Background(), "p1", "inv-1", 3000, "USD", w.clk.Now()); ok {
			t.Fatal("the same source reference accrued twice")
		}
		al := &alerts{}
		rep, err := w.runner(t, payout.RunnerConfig{Minimums: map[string]int64{"USD": 5000, "EUR": 5000}, Notifier: al}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Sent) != 3 || fmt.Sprint(rep.NoMinimum) != "[GBP]" {
			t.Fatalf("report %+v", rep)
		}
		w.balanced(t, map[string]int64{"acct_1 USD": 6000, "acct_3 EUR": 6000, "acct_3 USD": 5500})
		if len(al.got) != 1 || al.got[0].Severity != alert.SeveritySuccess {
			t.Fatalf("alerts %+v", al.got)
		}
		// p2 crosses the threshold later.
		w.accrue(t, "p2", "inv-7", 1, "USD")
		if rep, _ := w.runner(t, payout.RunnerConfig{}).Run(context.Background()); len(rep.Sent) != 1 || rep.Sent[0].Amount != 5000 {
			t.Fatalf("%+v", rep)
		}
		if h, _ := w.ledger.History(context.Background(), "p1"); len(h) != 1 || h[0].State != payout.StateSent || h[0].TransferID == "" {
			t.Fatalf("history %+v", h)
		}
	})
}

// TestAccrueBounds: amounts outside 1..MaxAmount are refused with
// ErrAmount and record nothing. Before, an operator's typo of
// 9223372036854775807 was recorded, and two of them overflowed the sums
// every payout run reads: every partner's run failed.
func TestAccrueBounds(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 2)
		for i, amount := range []int64{0, -1, payout.MaxAmount + 1, math.MaxInt64} {
			if _, err := w.ledger.Accrue(t.Context(), "p1", fmt.Sprintf("bad-%d", i), amount, "USD", w.clk.Now()); !errors.Is(err, payout.ErrAmount) {
				t.Fatalf("Accrue(%d): %v, want ErrAmount", amount, err)
			}
		}
		// The largest amount, in IDR (twelve digits), twice: the sum holds.
		w.accrue(t, "p1", "idr-1", payout.MaxAmount, "IDR")
		w.accrue(t, "p1", "idr-2", payout.MaxAmount, "IDR")
		w.accrue(t, "p2", "usd-1", 6000, "USD")
		if cs, _ := w.ledger.Commissions(t.Context(), ""); len(cs) != 3 {
			t.Fatalf("%d commissions recorded, want 3", len(cs))
		}
		bals, err := w.ledger.Balances(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bals {
			if b.Currency == "IDR" && b.Unpaid != 2*payout.MaxAmount {
				t.Fatalf("IDR balance %+v", b)
			}
		}
		rep, err := w.runner(t, payout.RunnerConfig{Minimums: map[string]int64{"USD": 5000}}).Run(t.Context())
		if err != nil || len(rep.Sent) != 1 {
			t.Fatalf("run: %+v, %v", rep, err)
		}
	})
}

func TestCommission(t *testing.T) {
	for _, tc := range []struct{ sale, want int64 }{{10000, 2000}, {999, 200}, {997, 199}, {1, 0}, {3, 1}} {
		if got := payout.Commission(tc.sale, payout.DefaultCommissionBasisPoints); got != tc.want {
			t.Errorf("20%% of %d = %d, want %d", tc.sale, got, tc.want)
		}
	}
}

var errCrash = errors.New("simulated crash")

// TestCrashAfterEachStep stops a Run after each step (as a crash would),
// then runs again: every partner is paid exactly once, nothing is lost.
func TestCrashAfterEachStep(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		for _, tc := range []struct {
			name  string
			step  payout.Step
			fail  []string // provider behaviour on the first run
			crash bool
		}{
			{name: "after reserving, before the transfer", step: payout.StepReserved, crash: true},
			{name: "after the transfer, before recording", step: payout.StepPaid, crash: true},
			{name: "after recording", step: payout.StepRecorded, crash: true},
			{name: "transfer made, answer lost", fail: []string{"drop"}},
			{name: "stripe 500", fail: []string{"500"}},
			{name: "stripe 429", fail: []string{"429"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t, e, 3)
				for i := 1; i <= 3; i++ {
					w.accrue(t, fmt.Sprintf("p%d", i), fmt.Sprintf("inv-%d", i), int64(5000*i), "USD")
				}
				w.stripe.fail = tc.fail
				var hook func(payout.Step, string) error
				if tc.crash {
					hook = func(s payout.Step, _ string) error {
						if s == tc.step {
							return errCrash
						}
						return nil
					}
				}
				r := w.runner(t, payout.RunnerConfig{})
				payout.SetHook(r, hook)
				_, err := r.Run(context.Background())
				if tc.crash && !errors.Is(err, errCrash) {
					t.Fatalf("first run: %v", err)
				}
				// The crashed run's lease must expire before another takes over.
				w.clk.Advance(payout.DefaultLease + time.Second)
				for range 2 {
					if _, err := w.runner(t, payout.RunnerConfig{}).Run(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				w.balanced(t, map[string]int64{"acct_1 USD": 5000, "acct_2 USD": 10000, "acct_3 USD": 15000})
				// One idempotency key per payout, however many attempts.
				for group, keys := range w.stripe.keysByGroup {
					if len(keys) != 1 {
						t.Fatalf("payout %s used keys %v", group, keys)
					}
				}
			})
		}
	})
}

func TestConcurrentRuns(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 20)
		want := map[string]int64{}
		for i := 1; i <= 20; i++ {
			w.accrue(t, fmt.Sprintf("p%d", i), fmt.Sprintf("inv-%d", i), 6000, "USD")
			want[fmt.Sprintf("acct_%d USD", i)] = 6000
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range 4 {
			// Each replica has its own connection pool to the same database file.
			db := w.reopen()
			ledger, err := payout.NewLedger(context.Background(), payout.LedgerConfig{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			r := w.runner(t, payout.RunnerConfig{Ledger: ledger})
			wg.Go(func() { _, errs[i] = r.Run(context.Background()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		w.balanced(t, want)
	})
}

func TestPermanentFailureReleasesCommissions(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 1)
		_ = w.ledger.AddPartner(context.Background(), "p1", "acct_typo", w.clk.Now())
		w.accrue(t, "p1", "inv-1", 7000, "USD")
		al := &alerts{}
		rep, err := w.runner(t, payout.RunnerConfig{Notifier: al}).Run(context.Background())
		if err == nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Failure, "No such destination") {
			t.Fatalf("report %+v err %v", rep, err)
		}
		if len(al.got) != 1 || al.got[0].Severity != alert.SeverityCritical {
			t.Fatalf("alerts %+v", al.got)
		}
		bals, _ := w.ledger.Balances(context.Background())
		if bals[0].Unpaid != 7000 {
			t.Fatalf("commissions not released: %+v", bals)
		}
		_ = w.ledger.AddPartner(context.Background(), "p1", "acct_1", w.clk.Now()) // fixed
		if _, err := w.runner(t, payout.RunnerConfig{}).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.balanced(t, map[string]int64{"acct_1 USD": 7000})
		if f, _ := w.ledger.Payouts(context.Background(), payout.StateFailed); len(f) != 1 {
			t.Fatal("the failed payout's record was lost")
		}
	})
}

func TestDryRun(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 2)
		w.accrue(t, "p1", "inv-1", 8000, "USD")
		rep, err := w.runner(t, payout.RunnerConfig{DryRun: true}).Run(context.Background())
		if err != nil || len(rep.Planned) != 1 || rep.Planned[0].Amount != 8000 {
			t.Fatalf("%+v %v", rep, err)
		}
		var out strings.Builder
		_ = rep.WriteText(&out)
		if !strings.Contains(out.String(), "would pay  p1       $80.00") {
			t.Fatalf("dry-run output:\n%s", out.String())
		}
		if w.stripe.count() != 0 {
			t.Fatal("dry run paid")
		}
		if p, _ := w.ledger.Payouts(context.Background()); len(p) != 0 {
			t.Fatal("dry run wrote payouts")
		}
	})
}

func TestConfirm(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 1)
		w.accrue(t, "p1", "inv-1", 8000, "USD")
		rep, _ := w.runner(t, payout.RunnerConfig{}).Run(context.Background())
		if err := w.ledger.Confirm(context.Background(), rep.Sent[0].TransferID, w.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if h, _ := w.ledger.History(context.Background(), "p1"); h[0].State != payout.StateConfirmed {
			t.Fatalf("%+v", h)
		}
		if err := w.ledger.Confirm(context.Background(), "tr_nope", w.clk.Now()); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestCrashedRunIsReportedInFlight: a Run inside a crashed Run's lease
// does not finish its payouts, and says so (with the lease expiry) instead
// of reporting nothing; a dry run lists them as pending.
func TestCrashedRunIsReportedInFlight(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 2)
		w.accrue(t, "p1", "inv-1", 6000, "USD")
		w.accrue(t, "p2", "inv-2", 7000, "USD")
		crash := func(s payout.Step, _ string) error {
			if s == payout.StepReserved {
				return errCrash
			}
			return nil
		}
		crashed := w.runner(t, payout.RunnerConfig{Owner: "run_crashed"})
		payout.SetHook(crashed, crash)
		if _, err := crashed.Run(context.Background()); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		w.clk.Advance(time.Minute)
		rep, err := w.runner(t, payout.RunnerConfig{}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.InFlight) != 1 || rep.InFlight[0].LeaseOwner != "run_crashed" || rep.Done() {
			t.Fatalf("in flight %+v, done %v", rep.InFlight, rep.Done())
		}
		var out strings.Builder
		_ = rep.WriteText(&out)
		want := "leased by run_crashed until " + w.clk.Now().Add(payout.DefaultLease-time.Minute).UTC().Format(time.RFC3339)
		if !strings.Contains(out.String(), "in flight") || !strings.Contains(out.String(), want) {
			t.Fatalf("report:\n%s\nwant %q", out.String(), want)
		}
		dry, err := w.runner(t, payout.RunnerConfig{DryRun: true}).Run(context.Background())
		if err != nil || len(dry.Pending) == 0 {
			t.Fatalf("dry run pending %+v %v", dry.Pending, err)
		}
		w.clk.Advance(payout.DefaultLease)
		var progress []string
		rep, err = w.runner(t, payout.RunnerConfig{Progress: func(p payout.Payout) { progress = append(progress, p.ID) }}).Run(context.Background())
		if err != nil || !rep.Done() || len(rep.Sent) == 0 || len(progress) != len(rep.Sent) {
			t.Fatalf("after the lease: %+v %v; progress %v", rep, err, progress)
		}
	})
}

func TestAmountsFormattedWithTheirDecimals(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 1)
		w.accrue(t, "p1", "inv-jpy", 6000, "JPY")
		w.accrue(t, "p1", "inv-kwd", 20000, "KWD")
		rep, err := w.runner(t, payout.RunnerConfig{DryRun: true, Minimums: map[string]int64{"JPY": 5000, "KWD": 15000}}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		_ = rep.WriteText(&out)
		for _, want := range []string{"6000 JPY", "20.000 KWD"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("want %q in\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "60.00 JPY") {
			t.Fatalf("yen printed with two decimals:\n%s", out.String())
		}
	})
}

func TestPartnersAndCommissionsListed(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e, 2)
		w.accrue(t, "p2", "inv-9", 1234, "EUR")
		ps, err := w.ledger.Partners(context.Background())
		if err != nil || len(ps) != 2 || ps[0].ID != "p1" || ps[1].Account != "acct_2" {
			t.Fatalf("%+v %v", ps, err)
		}
		cs, err := w.ledger.Commissions(context.Background(), "p2")
		if err != nil || len(cs) != 1 || cs[0].SourceRef != "inv-9" || cs[0].Amount != 1234 || cs[0].PayoutID != "" {
			t.Fatalf("%+v %v", cs, err)
		}
		if cs, _ := w.ledger.Commissions(context.Background(), "p1"); len(cs) != 0 {
			t.Fatalf("p1: %+v", cs)
		}
		if _, err := w.ledger.Accrue(context.Background(), "p1", "x", 5, "usd1", w.clk.Now()); err == nil {
			t.Fatal("a bad currency was accepted")
		}
	})
}

// TestOnboardingPartnerIsPaidOnceReady: a partner still onboarding
// accrues commissions but is paid nothing (and reported not ready) until
// its account can receive transfers.
func TestOnboardingPartnerIsPaidOnceReady(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 1)
		if err := w.ledger.AddOnboardingPartner(ctx, "p2", "acct_2", w.clk.Now()); err != nil {
			t.Fatal(err)
		}
		w.stripe.allow("acct_2")
		w.accrue(t, "p2", "inv-1", 6000, "USD")
		rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx)
		if err != nil || len(rep.Sent) != 0 || len(rep.NotReady) != 1 || rep.NotReady[0].PartnerID != "p2" || rep.NotReady[0].Amount != 6000 {
			t.Fatalf("before onboarding: %+v, %v", rep, err)
		}
		ps, _ := w.ledger.Partners(ctx)
		if len(ps) != 2 || !ps[0].PayoutsEnabled || ps[1].PayoutsEnabled {
			t.Fatalf("partners: %+v", ps)
		}
		if err := w.ledger.SetPayoutsEnabled(ctx, "acct_unknown", true, w.clk.Now()); !errors.Is(err, payout.ErrUnknownPartner) {
			t.Fatalf("unknown account: %v", err)
		}
		if err := w.ledger.SetPayoutsEnabled(ctx, "acct_2", true, w.clk.Now()); err != nil {
			t.Fatal(err)
		}
		// An older "not enabled", delivered late, changes nothing.
		if err := w.ledger.SetPayoutsEnabled(ctx, "acct_2", false, w.clk.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Adding the partner again (a retried sign-up) does not undo it.
		if err := w.ledger.AddOnboardingPartner(ctx, "p2", "acct_2", w.clk.Now()); err != nil {
			t.Fatal(err)
		}
		rep, err = w.runner(t, payout.RunnerConfig{}).Run(ctx)
		if err != nil || len(rep.Sent) != 1 || len(rep.NotReady) != 0 {
			t.Fatalf("after onboarding: %+v, %v", rep, err)
		}
		w.balanced(t, map[string]int64{"acct_2 USD": 6000})
	})
}

// TestReversals: a refund reverses an unpaid commission (nothing is paid
// for it), or, once paid, leaves a negative balance taken from the next
// payout; reversals state totals, so replays and reordering are harmless.
func TestReversals(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 1)
		reverse := func(com, ref string, total, want int64) {
			t.Helper()
			got, err := w.ledger.Reverse(ctx, com, ref, total, w.clk.Now())
			if err != nil || got != want {
				t.Fatalf("Reverse(%s, %s, %d) = %d, %v; want %d", com, ref, total, got, err, want)
			}
		}
		// Unpaid: a full refund nets the commission to nothing.
		w.accrue(t, "p1", "inv-1", 6000, "USD")
		reverse("inv-1", "refund-1@6000", 6000, 6000)
		reverse("inv-1", "refund-1@6000", 6000, 0) // replayed
		reverse("inv-1", "refund-1@9000", 9000, 0) // capped at the commission
		if rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx); err != nil || len(rep.Sent) != 0 {
			t.Fatalf("a reversed commission was paid: %+v, %v", rep, err)
		}
		// Paid, then refunded in two parts (totals 1000, then 2500; the
		// first arriving again late changes nothing).
		w.accrue(t, "p1", "inv-2", 5000, "USD")
		if rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx); err != nil || len(rep.Sent) != 1 || rep.Sent[0].Amount != 5000 {
			t.Fatalf("first payout: %+v, %v", rep, err)
		}
		reverse("inv-2", "refund-2@1000", 1000, 1000)
		reverse("inv-2", "refund-2@2500", 2500, 1500)
		reverse("inv-2", "refund-2@1000-late", 1000, 0)
		bals, _ := w.ledger.Balances(ctx)
		if len(bals) != 1 || bals[0].Unpaid != -2500 || bals[0].Paid != 5000 {
			t.Fatalf("balances after the refund: %+v", bals)
		}
		// The negative balance is carried: 6000 more earned pays 3500,
		// which is below the $50 minimum, so nothing yet; 2000 more pays
		// 5500.
		w.accrue(t, "p1", "inv-3", 6000, "USD")
		if rep, _ := w.runner(t, payout.RunnerConfig{}).Run(ctx); len(rep.Sent) != 0 {
			t.Fatalf("paid below the minimum after a reversal: %+v", rep.Sent)
		}
		w.accrue(t, "p1", "inv-4", 2000, "USD")
		rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx)
		if err != nil || len(rep.Sent) != 1 || rep.Sent[0].Amount != 5500 {
			t.Fatalf("second payout: %+v, %v", rep, err)
		}
		w.balanced(t, map[string]int64{"acct_1 USD": 10500})
		cs, _ := w.ledger.Commissions(ctx, "p1")
		var sum int64
		var reversals int
		for _, c := range cs {
			sum += c.Amount
			if c.Amount < 0 {
				reversals++
				if c.Reverses == "" {
					t.Fatalf("reversal without its commission: %+v", c)
				}
			}
		}
		if sum != 10500 || reversals != 3 {
			t.Fatalf("commissions sum to %d with %d reversals: %+v", sum, reversals, cs)
		}
		if _, err := w.ledger.Reverse(ctx, "inv-missing", "r", 1, w.clk.Now()); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("reversing an unknown commission: %v", err)
		}
	})
}

// TestConcurrentReversals: reversals of one commission racing from
// several connections never take back more than the commission.
func TestConcurrentReversals(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 1)
		w.accrue(t, "p1", "inv-1", 1000, "USD")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				total := int64(300 + 100*i)
				if _, err := w.ledger.Reverse(ctx, "inv-1", fmt.Sprintf("r@%d", total), total, w.clk.Now()); err != nil && !isBusy(err) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		bals, _ := w.ledger.Balances(ctx)
		if len(bals) != 1 || bals[0].Unpaid < 0 {
			t.Fatalf("reversed more than the commission: %+v", bals)
		}
	})
}

// isBusy: SQLite answers a writer that waited out busy_timeout with
// SQLITE_BUSY; that reversal is refused whole, never half done.
func isBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

// TestLedgerUpgrade: a ledger created before onboarding and reversals
// existed opens, keeps its partners ready, and records reversals.
func TestLedgerUpgrade(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		db := e.open(t)()
		for _, s := range []string{
			`CREATE TABLE levqor_partners (id TEXT PRIMARY KEY, account TEXT NOT NULL, created_at TEXT NOT NULL)`,
			`CREATE TABLE levqor_commissions (id TEXT PRIMARY KEY, partner_id TEXT NOT NULL REFERENCES levqor_partners(id),
				source_ref TEXT NOT NULL UNIQUE, amount BIGINT NOT NULL CHECK (amount > 0),
				currency TEXT NOT NULL, earned_at TEXT NOT NULL, payout_id TEXT)`,
			`INSERT INTO levqor_partners VALUES ('old', 'acct_old', '2026-01-01T00:00:00.000000000Z')`,
			`INSERT INTO levqor_commissions VALUES ('com_1', 'old', 'inv-old', 700, 'USD', '2026-01-01T00:00:00.000000000Z', NULL)`,
		} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		l, err := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := l.Partners(ctx)
		if err != nil || len(ps) != 1 || !ps[0].PayoutsEnabled {
			t.Fatalf("old partner: %+v, %v", ps, err)
		}
		if got, err := l.Reverse(ctx, "inv-old", "refund", 700, time.Now()); err != nil || got != 700 {
			t.Fatalf("reverse on an upgraded ledger: %d, %v", got, err)
		}
	})
}

// TestPages: a partner's commissions and payouts page newest first, and
// one partner's balances and record are read alone.
func TestPages(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 2)
		for i := range 5 {
			w.accrue(t, "p1", fmt.Sprintf("inv-%d", i), int64(100+i), "USD")
			w.clk.Advance(time.Minute)
		}
		w.accrue(t, "p2", "other", 999, "USD")
		first, err := w.ledger.CommissionsPage(ctx, "p1", 2, 0)
		if err != nil || len(first) != 2 || first[0].Amount != 104 || first[1].Amount != 103 {
			t.Fatalf("first page: %+v, %v", first, err)
		}
		last, err := w.ledger.CommissionsPage(ctx, "p1", 2, 4)
		if err != nil || len(last) != 1 || last[0].Amount != 100 {
			t.Fatalf("last page: %+v, %v", last, err)
		}
		if _, err := w.ledger.CommissionsPage(ctx, "p1", 0, 0); err == nil {
			t.Fatal("limit 0 accepted")
		}
		bals, err := w.ledger.PartnerBalances(ctx, "p1")
		if err != nil || len(bals) != 1 || bals[0].Unpaid != 510 {
			t.Fatalf("p1 balances: %+v, %v", bals, err)
		}
		if p, err := w.ledger.Partner(ctx, "p2"); err != nil || p.Account != "acct_2" || !p.PayoutsEnabled {
			t.Fatalf("partner p2: %+v, %v", p, err)
		}
		if _, err := w.ledger.Partner(ctx, "nobody"); !errors.Is(err, payout.ErrUnknownPartner) {
			t.Fatalf("unknown partner: %v", err)
		}
		if ps, err := w.ledger.HistoryPage(ctx, "p1", 10, 0); err != nil || len(ps) != 0 {
			t.Fatalf("history: %+v, %v", ps, err)
		}
	})
}

// TestAddOnboardingPartnerTx: a partner added inside the caller's
// transaction exists once it commits, not at all if it rolls back.
func TestAddOnboardingPartnerTx(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 0)
		add := func(id string, commit bool) {
			tx, err := w.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if err := w.ledger.AddOnboardingPartnerTx(ctx, tx, id, "acct_"+id, w.clk.Now()); err != nil {
				t.Fatal(err)
			}
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		add("rolled-back", false)
		add("committed", true)
		if _, err := w.ledger.Partner(ctx, "rolled-back"); !errors.Is(err, payout.ErrUnknownPartner) {
			t.Fatalf("a rolled-back sign-up left a partner: %v", err)
		}
		p, err := w.ledger.Partner(ctx, "committed")
		if err != nil || p.Account != "acct_committed" || p.PayoutsEnabled {
			t.Fatalf("committed sign-up: %+v, %v", p, err)
		}
	})
}

// TestRekeyPartner: a partner with commissions, a reversal and a payout
// moves to a new id in one transaction, foreign keys intact on both
// engines; doing it again changes nothing.
func TestRekeyPartner(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 2)
		if _, err := w.db.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil && e.name == "sqlite" {
			t.Fatal(err)
		}
		w.accrue(t, "p1", "inv-1", 6000, "USD")
		if rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx); err != nil || len(rep.Sent) != 1 {
			t.Fatalf("payout: %+v, %v", rep, err)
		}
		if _, err := w.ledger.Reverse(ctx, "inv-1", "r1", 1000, w.clk.Now()); err != nil {
			t.Fatal(err)
		}
		w.accrue(t, "p2", "inv-2", 100, "USD")
		rekey := func() int64 {
			tx, err := w.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			n, err := w.ledger.RekeyPartnerTx(ctx, tx, "p1", "hmac:p1", "hmac:acct_1")
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := rekey(); n != 4 { // partner, commission, reversal, payout
			t.Fatalf("re-keyed %d rows, want 4", n)
		}
		if n := rekey(); n != 0 {
			t.Fatalf("second re-key changed %d rows", n)
		}
		if _, err := w.ledger.Partner(ctx, "p1"); !errors.Is(err, payout.ErrUnknownPartner) {
			t.Fatalf("old id still a partner: %v", err)
		}
		p, err := w.ledger.Partner(ctx, "hmac:p1")
		if err != nil || p.Account != "hmac:acct_1" || p.PayoutsEnabled {
			t.Fatalf("new partner (not ready until its account is confirmed): %+v, %v", p, err)
		}
		bals, _ := w.ledger.PartnerBalances(ctx, "hmac:p1")
		if len(bals) != 1 || bals[0].Paid != 6000 || bals[0].Unpaid != -1000 {
			t.Fatalf("balances moved: %+v", bals)
		}
		if hist, _ := w.ledger.History(ctx, "hmac:p1"); len(hist) != 1 {
			t.Fatalf("payout history moved: %+v", hist)
		}
		if bals, _ := w.ledger.PartnerBalances(ctx, "p2"); len(bals) != 1 || bals[0].Unpaid != 100 {
			t.Fatalf("another partner changed: %+v", bals)
		}
		// A balance over the minimum is not paid to the pseudonym: listed
		// as not ready, never a failed transfer.
		w.accrue(t, "hmac:p1", "inv-3", 9000, "USD")
		if rep, err := w.runner(t, payout.RunnerConfig{}).Run(ctx); err != nil || len(rep.Sent) != 0 || len(rep.Failed) != 0 || len(rep.NotReady) != 1 {
			t.Fatalf("run after the re-key: %+v, %v", rep, err)
		}
	})
}

// TestNewRunnerConfig: a configuration mistake is refused when the Runner
// is built, never met during a Run.
func TestNewRunnerConfig(t *testing.T) {
	w := newWorld(t, engines[0], 0)
	pay := stripePayouter(w.stripe)
	for _, tc := range []struct {
		name string
		cfg  payout.RunnerConfig
		want string // "" for accepted
	}{
		{"no ledger", payout.RunnerConfig{Payouter: pay}, "needs Ledger and Payouter"},
		{"no payouter", payout.RunnerConfig{Ledger: w.ledger}, "needs Ledger and Payouter"},
		{"defaults", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay}, ""},
		{"lower-case code", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"eur": 5000}}, ""},
		{"two-letter code", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"US": 5000}}, `"US"`},
		{"not letters", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"U$D": 5000}}, `"U$D"`},
		{"zero minimum", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"USD": 0}}, "positive amount"},
		{"negative minimum", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"USD": -1}}, "positive amount"},
		{"one currency twice", payout.RunnerConfig{Ledger: w.ledger, Payouter: pay, Minimums: map[string]int64{"usd": 5000, "USD": 100}}, "two minimums for USD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := payout.NewRunner(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestAddPartnerAgain: AddPartner marks the partner ready whether or not
// it existed (the operator checked the account it names); adding an
// onboarding partner again keeps its readiness only for the same account,
// as a different one is unconfirmed.
func TestAddPartnerAgain(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		w := newWorld(t, e, 0)
		ready := func(id string) bool {
			t.Helper()
			p, err := w.ledger.Partner(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return p.PayoutsEnabled
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(w.ledger.AddOnboardingPartner(ctx, "p", "acct_1", w.clk.Now()))
		must(w.ledger.AddPartner(ctx, "p", "acct_1", w.clk.Now()))
		if !ready("p") {
			t.Fatal("an onboarding partner added again by AddPartner is not ready")
		}
		// The operator's check is news as of then: a provider event from
		// before it, delivered late, changes nothing; a later one does.
		must(w.ledger.SetPayoutsEnabled(ctx, "acct_1", false, w.clk.Now().Add(-time.Minute)))
		if !ready("p") {
			t.Fatal("an event older than the operator's check undid it")
		}
		must(w.ledger.SetPayoutsEnabled(ctx, "acct_1", false, w.clk.Now().Add(time.Minute)))
		if ready("p") {
			t.Fatal("a newer event was ignored")
		}
		must(w.ledger.AddPartner(ctx, "p", "acct_1", w.clk.Now().Add(2*time.Minute)))
		must(w.ledger.AddOnboardingPartner(ctx, "p", "acct_1", w.clk.Now())) // a retried sign-up
		if !ready("p") {
			t.Fatal("the same account added again lost its readiness")
		}
		must(w.ledger.AddOnboardingPartner(ctx, "p", "acct_2", w.clk.Now()))
		if p, _ := w.ledger.Partner(ctx, "p"); p.Account != "acct_2" || p.PayoutsEnabled {
			t.Fatalf("another account, unconfirmed: %+v", p)
		}
	})
}
