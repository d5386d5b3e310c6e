package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/spendguard"
	"github.com/stripe/stripe-go/v85"
)

// stripeClient honours LEVQOR_STRIPE_API.
func stripeClient(cfg config) *stripe.Client {
	// Errors are returned to the caller, which logs them through slog;
	// stripe-go's own logger (to stderr) stays silent.
	bc := &stripe.BackendConfig{LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if cfg.StripeAPI != "" {
		bc.URL = stripe.String(cfg.StripeAPI)
	}
	api := stripe.GetBackendWithConfig(stripe.APIBackend, bc)
	uploads := stripe.GetBackendWithConfig(stripe.UploadsBackend, bc)
	connect := stripe.GetBackendWithConfig(stripe.ConnectBackend, bc)
	if cfg.StripeAPI != "" {
		uploads, connect = api, api
	}
	return stripe.NewClient(cfg.StripeKey, stripe.WithBackends(&stripe.Backends{API: api, Connect: connect, Uploads: uploads}))
}

// costSources builds the configured cost sources. The daily spend guard
// takes only the spend a pause can stop (Stripe fees, OpenAI usage); the
// cost report also shows the fixed monthly infrastructure cost
// (withFixed), which would otherwise pause billing every day it exceeds
// the daily limit.
func costSources(cfg config, withFixed bool) ([]spendguard.Source, error) {
	var out []spendguard.Source
	if cfg.StripeKey != "" {
		s, err := spendguard.NewStripe(spendguard.StripeConfig{Client: stripeClient(cfg)})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if cfg.OpenAIAdminKey != "" {
		base := cfg.OpenAIAPI
		o, err := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: cfg.OpenAIAdminKey, BaseURL: base})
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if withFixed && cfg.InfraMonthly.Amount > 0 {
		f, err := spendguard.NewFixed(spendguard.FixedConfig{Label: "infrastructure", Monthly: cfg.InfraMonthly})
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// costReportSources are the cost report's sources (`costs` and the
// dashboard): every cost source, the fixed monthly cost included, and the
// database's own counts.
func costReportSources(cfg config, db *database) ([]spendguard.Source, error) {
	sources, err := costSources(cfg, true)
	if err != nil {
		return nil, err
	}
	size := "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
	if db.dialect == sqldialect.Postgres {
		size = "SELECT pg_database_size(current_database())"
	}
	return append(sources, &spendguard.SQLMetrics{Label: "database", DB: db.DB, Queries: []spendguard.MetricQuery{
		{Label: "users", SQL: "SELECT COUNT(*) FROM users WHERE deleted_at IS NULL"},
		{Label: "partners", SQL: "SELECT COUNT(*) FROM levqor_partners"},
		{Label: "database bytes", SQL: size},
	}}), nil
}

// legacyBillingFlags, in the data directory, is where billing was paused
// before the pause moved into the database: a file is seen only on its own
// machine, so replicas disagreed about it.
const legacyBillingFlags = "billing_flags.json"

// openBilling is the billing pause the spend guard sets and `spend resume`
// lifts, in the server's database: every replica's dashboard and billable
// routes see a pause made by `spend` on any machine. A paused flags file
// left by an earlier version is imported first, once (then renamed).
func openBilling(ctx context.Context, cfg config, db *sql.DB, log *slog.Logger) (*spendguard.SQLFlags, error) {
	flags, err := spendguard.NewSQLFlags(ctx, spendguard.SQLFlagsConfig{DB: db})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, legacyBillingFlags)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return flags, nil
	}
	old, err := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
	if err != nil {
		return nil, err
	}
	st, err := old.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing flags file %s: %w", path, err)
	}
	if st.Paused {
		if err := flags.Pause(ctx, st.Reason); err != nil {
			return nil, err
		}
		log.Warn("billing pause imported from the flags file into the database", "file", path, "paused_at", st.Since, "reason", st.Reason)
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return nil, fmt.Errorf("billing flags file: %w", err)
	}
	return flags, nil
}

// openServerBilling opens, for an ops command, the server's database and
// the billing pause in it.
func openServerBilling(ctx context.Context, env *cliEnv) (*database, *spendguard.SQLFlags, error) {
	db, err := openServerDB(ctx, env.cfg)
	if err != nil {
		return nil, nil, err
	}
	flags, err := openBilling(ctx, env.cfg, db.DB, env.log)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, flags, nil
}

// legacySpendMemory, in the data directory, is where `spend` remembered
// the alerts it sent and the pause it made today before that moved into
// the database: a file is seen only on its own machine, so `spend` run
// from cron on several alerted once on each.
const legacySpendMemory = "spend_guard.json"

// openSpendMemory is the spend guard's record in the server's database,
// shared by `spend` runs on every machine (each cron run is a new process,
// and without it every run would alert again). A record file left by an
// earlier version is imported first, once (then renamed), unless the
// database holds a record as recent.
func openSpendMemory(ctx context.Context, cfg config, db *sql.DB) (*spendguard.SQLMemory, error) {
	if db.Stats().MaxOpenConnections == 1 {
		// LEVQOR_DATABASE_MAX_CONNS=1 sizes a replica's pool; this one-off
		// run needs a second connection beside the memory's lock.
		db.SetMaxOpenConns(2)
	}
	mem, err := spendguard.NewSQLMemory(ctx, spendguard.SQLMemoryConfig{DB: db})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, legacySpendMemory)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return mem, nil
	}
	old, err := spendguard.NewMemoryFile(spendguard.MemoryFileConfig{Path: path})
	if err != nil {
		return nil, err
	}
	memo, err := old.Load(ctx)
	if err != nil {
		return nil, err
	}
	unlock, err := mem.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	current, err := mem.Load(ctx)
	if err != nil {
		return nil, err
	}
	if memo.Day > current.Day { // YYYY-MM-DD: text order is date order
		if err := mem.Save(ctx, memo); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return nil, fmt.Errorf("spend guard record file: %w", err)
	}
	return mem, nil
}

func cmdSpend(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) > 0 && args[0] == "resume" {
		return cmdSpendResume(ctx, env, args[1:])
	}
	fs := newFlags(env, "spend")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	sources, err := costSources(env.cfg, false)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	if len(sources) == 0 {
		fmt.Fprintln(env.stderr, "spend: no usage cost sources configured (STRIPE_SECRET_KEY, OPENAI_ADMIN_KEY): spend is unknown")
		return 2
	}
	db, flags, err := openServerBilling(ctx, env)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend:", err)
		return 2
	}
	defer db.Close()
	notifier, err := opsNotifier(env.cfg, env.log)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	memory, err := openSpendMemory(ctx, env.cfg, db.DB)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend:", err)
		return 2
	}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: sources, Limit: env.cfg.DailyLimit, Logger: env.log, Pauser: flags,
		Notifier: notifier, Memory: memory,
	})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	c, err := g.Check(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend:", err)
	}
	fmt.Fprintf(env.stdout, "%s: spent %s of %s (%.1f%%), forecast %s\n", c.Day, c.Spent, c.Limit, c.Percent, c.Forecast)
	for _, f := range c.Failed {
		fmt.Fprintf(env.stdout, "  source %s FAILED: %s\n", f.Source, f.Err)
	}
	// A pause outlives the day that caused it: resuming is a person's
	// decision, so every run says so until someone makes it.
	st, err := flags.State(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend: billing pause:", err)
		return 2
	}
	if st.Paused {
		fmt.Fprintf(env.stdout, "billing PAUSED since %s: %s\nresume with: levqor-server spend resume --by NAME\n", st.Since.Format(time.RFC3339), st.Reason)
	}
	switch {
	case c.Percent >= 100 || st.Paused:
		return 1
	case !c.Complete:
		return 2
	}
	return 0
}

// cmdSpendResume is `spend resume --by NAME`: lifts the pause the spend
// guard set at 100%, recording who and when, and alerts, so the team
// knows billing runs again.
func cmdSpendResume(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "spend")
	by := fs.String("by", "", "who resumes billing (recorded with the pause state, and in the alert)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if strings.TrimSpace(*by) == "" {
		fmt.Fprintln(env.stderr, "spend resume: --by NAME is required: resuming billing is recorded with who did it")
		return 2
	}
	db, flags, err := openServerBilling(ctx, env)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend resume:", err)
		return 1
	}
	defer db.Close()
	before, err := flags.State(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, "spend resume: billing pause:", err)
		return 1
	}
	if !before.Paused {
		fmt.Fprintln(env.stdout, "billing is not paused; nothing to resume")
		return 0
	}
	notifier, err := opsNotifier(env.cfg, env.log)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	if err := flags.Resume(ctx, *by); err != nil {
		fmt.Fprintln(env.stderr, "spend resume:", err)
		return 1
	}
	fmt.Fprintf(env.stdout, "billing resumed by %s (paused since %s: %s)\n", *by, before.Since.Format(time.RFC3339), before.Reason)
	a := alert.Alert{Severity: alert.SeverityInfo, Title: "Billing resumed", Key: "billing-resumed",
		Message: "Billing was resumed after the spend guard paused it.",
		Fields:  []alert.Field{{Key: "By", Value: *by}, {Key: "Paused since", Value: before.Since.Format(time.RFC3339)}, {Key: "Reason", Value: before.Reason}}}
	if err := notifier.Notify(ctx, a); err != nil {
		fmt.Fprintln(env.stderr, "spend resume: billing resumed, but the alert failed:", err)
		return 1
	}
	return 0
}

// maxCostDays bounds costs --days: ten years, more than any bill a cost
// source keeps; beyond it the period is a typo (or, near the int limit,
// would overflow into a period that ends before it starts).
const maxCostDays = 3660

func cmdCosts(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "costs")
	asJSON := fs.Bool("json", false, "write JSON instead of a table")
	days := fs.Int("days", 1, "days to cover, ending now (1 to "+strconv.Itoa(maxCostDays)+")")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *days < 1 || *days > maxCostDays {
		fmt.Fprintf(env.stderr, "costs: --days must be between 1 and %d\n", maxCostDays)
		return 2
	}
	db, err := openServerDB(ctx, env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	sources, err := costReportSources(env.cfg, db)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	now := time.Now()
	r := spendguard.BuildReport(ctx, sources, spendguard.Period{Start: now.AddDate(0, 0, -*days), End: now}, now)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		_ = r.WriteText(env.stdout)
	}
	if !r.Complete {
		return 2
	}
	return 0
}
