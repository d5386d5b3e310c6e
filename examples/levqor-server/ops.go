package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/anomaly"
	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/payout"
	"github.com/levqor/levqor/slo"
	"github.com/levqor/levqor/spendguard"
)

// isTTY reports whether w is a terminal, for progress output.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// serverTables are the tables a backup of this server must contain: the
// restore test refuses a valid SQLite file of another application.
var serverTables = []string{"schema_migrations", "users", "sessions", "audit_log", "levqor_partners", "levqor_commissions", "levqor_payouts"}

// backupStore opens the backup directory with the server's key and schema
// check; progress, if set, receives page counts.
func backupStore(cfg config, log *slog.Logger, progress func(copied, total int)) (*backup.Store, error) {
	return backup.New(backup.Config{Dir: cfg.BackupDir, Logger: log, Key: cfg.BackupKey,
		Check: backup.RequireTables(serverTables...), Progress: progress})
}

func runBackup(ctx context.Context, cfg config, db *sql.DB, log *slog.Logger, progressOut io.Writer) error {
	var progress func(int, int)
	if isTTY(progressOut) {
		progress = func(copied, total int) {
			fmt.Fprintf(progressOut, "\rbackup: %d/%d pages (%d%%)", copied, total, 100*copied/max(total, 1))
			if copied == total {
				fmt.Fprintln(progressOut)
			}
		}
	}
	store, err := backupStore(cfg, log, progress)
	if err != nil {
		return err
	}
	info, err := store.Backup(ctx, db)
	if err != nil {
		return err
	}
	if _, err := store.Verify(ctx, info.Name); err != nil {
		return fmt.Errorf("new backup failed verification: %w", err)
	}
	if _, err := store.Prune(ctx, backup.Policy{KeepLast: cfg.BackupKeep}); err != nil {
		return err
	}
	if cfg.BackupUpload != "" {
		up, err := backup.NewDirUploader(backup.DirUploaderConfig{Dir: cfg.BackupUpload})
		if err != nil {
			return err
		}
		if err := store.Upload(ctx, info.Name, up, backup.UploadOptions{}); err != nil {
			return fmt.Errorf("backup %s kept locally, upload failed: %w", info.Name, err)
		}
	}
	return nil
}

func cmdBackup(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "backup")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() >= 1 && fs.Arg(0) == "verify" {
		if fs.NArg() != 2 {
			fmt.Fprintln(env.stderr, "usage: levqor-server backup verify <file>")
			return 2
		}
		store, err := backupStore(env.cfg, env.log, nil)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 1
		}
		// A path means that path, relative to the working directory.
		info, err := store.VerifyFile(ctx, fs.Arg(1))
		if err != nil {
			fmt.Fprintln(env.stderr, "FAIL:", err)
			return 1
		}
		fmt.Fprintf(env.stdout, "OK %s (%d bytes, sha256 %s)\n", fs.Arg(1), info.Size, info.SHA256)
		if info.Authenticated {
			fmt.Fprintln(env.stdout, "authenticity: OK (HMAC tag matches LEVQOR_BACKUP_KEY)")
		} else {
			fmt.Fprintln(env.stdout, "authenticity: NOT CHECKED (LEVQOR_BACKUP_KEY is not set): the file is intact, but anyone could have made it")
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "backup: unexpected %q\n", fs.Arg(0))
		return 2
	}
	db, err := openDB(env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	if err := runBackup(ctx, env.cfg, db, env.log, env.stderr); err != nil {
		fmt.Fprintln(env.stderr, "backup failed:", err)
		return 1
	}
	return 0
}

func cmdRestore(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "restore")
	force := fs.Bool("force", false, "replace an existing target file (never one in use: stop the server first)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(env.stderr, "usage: levqor-server restore [--force] <file> <target>")
		return 2
	}
	store, err := backupStore(env.cfg, env.log, nil)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	src, target := fs.Arg(0), fs.Arg(1)
	err = store.RestoreFile(ctx, src, target, backup.RestoreOptions{Overwrite: *force, LockFile: target + ".lock"})
	switch {
	case errors.Is(err, backup.ErrInUse):
		fmt.Fprintf(env.stderr, "restore refused: %v\nstop the server (and anything else using %s) first; --force does not override this\n", err, target)
		return 1
	case err != nil:
		fmt.Fprintln(env.stderr, "restore failed:", err)
		return 1
	}
	fmt.Fprintf(env.stdout, "restored %s to %s\n", src, target)
	if env.cfg.BackupKey == nil {
		fmt.Fprintln(env.stdout, "authenticity: NOT CHECKED (LEVQOR_BACKUP_KEY is not set)")
	}
	return 0
}

// stripeClient honours LEVQOR_STRIPE_API.
func stripeClient(cfg config) *stripe.Client {
	if cfg.StripeAPI == "" {
		return stripe.NewClient(cfg.StripeKey)
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(cfg.StripeAPI)})
	return stripe.NewClient(cfg.StripeKey, stripe.WithBackends(&stripe.Backends{API: b, Connect: b, Uploads: b}))
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

func cmdSpend(ctx context.Context, env *cliEnv, args []string) int {
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
	flags, err := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: filepath.Join(env.cfg.DataDir, "billing_flags.json")})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: sources, Limit: env.cfg.DailyLimit, Logger: env.log, Pauser: flags,
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
	switch {
	case c.Percent >= 100:
		return 1
	case !c.Complete:
		return 2
	}
	return 0
}

func cmdCosts(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "costs")
	asJSON := fs.Bool("json", false, "write JSON instead of a table")
	days := fs.Int("days", 1, "days to cover, ending now")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	db, err := openDB(env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	sources, err := costSources(env.cfg, true)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	sources = append(sources, &spendguard.SQLMetrics{Label: "database", DB: db, Queries: []spendguard.MetricQuery{
		{Label: "users", SQL: "SELECT COUNT(*) FROM users"},
		{Label: "partners", SQL: "SELECT COUNT(*) FROM levqor_partners"},
		{Label: "database bytes", SQL: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"},
	}})
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

// Exit codes of `payouts`.
const (
	payoutsDone    = 0 // everything due was paid
	payoutsFailed  = 1 // a payout failed permanently, or the run failed
	payoutsPending = 3 // payouts left pending: to retry, or leased by another run
)

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
	p, err := payout.NewStripeTransfers(payout.StripeTransfersConfig{Client: stripeClient(env.cfg)})
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
	rep, err := r.Run(ctx)
	_ = rep.WriteText(env.stdout)
	switch {
	case len(rep.Failed) > 0 || (err != nil && len(rep.Retrying) == 0):
		if err != nil {
			fmt.Fprintln(env.stderr, "payouts:", err)
		}
		return payoutsFailed
	case len(rep.Retrying) > 0 || len(rep.InFlight) > 0:
		fmt.Fprintf(env.stderr, "payouts: %d left pending (%d to retry, %d held by another run); run again later\n",
			len(rep.Retrying)+len(rep.InFlight), len(rep.Retrying), len(rep.InFlight))
		return payoutsPending
	}
	return payoutsDone
}

func openLedger(ctx context.Context, cfg config) (*sql.DB, *payout.Ledger, error) {
	db, err := openDB(cfg)
	if err != nil {
		return nil, nil, err
	}
	ledger, err := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
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
		if *id == "" || len(*id) > 128 {
			return bad("--id is required (at most 128 characters)")
		}
		if !stripeAccount.MatchString(*account) {
			return bad("--account must be a Stripe Connect account id like acct_1Nv0FGQ9RKHgCVdK")
		}
		if err := ledger.AddPartner(ctx, *id, *account, time.Now()); err != nil {
			fmt.Fprintln(env.stderr, err)
			return 1
		}
		fmt.Fprintf(env.stdout, "partner %s → %s\n", *id, *account)
	case "commissions add":
		cur := strings.ToUpper(*currency)
		switch {
		case *partner == "":
			return bad("--partner is required")
		case *amount <= 0:
			return bad("--amount must be a positive number of minor units")
		case !money.ValidCurrency(cur):
			return bad("--currency must be a 3-letter ISO 4217 code")
		case *ref == "" || len(*ref) > 255:
			return bad("--ref is required (at most 255 characters)")
		}
		added, err := ledger.Accrue(ctx, *partner, *ref, *amount, cur, time.Now())
		if errors.Is(err, payout.ErrUnknownPartner) {
			return bad(err.Error())
		}
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 1
		}
		if !added {
			fmt.Fprintf(env.stdout, "commission %s already recorded; nothing added\n", *ref)
			return 0
		}
		fmt.Fprintf(env.stdout, "commission %s: %s for %s\n", *ref, money.New(*amount, cur), *partner)
	case "partners list":
		ps, err := ledger.Partners(ctx)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 1
		}
		if *asJSON {
			return writeJSONOut(env, ps)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTNER\tACCOUNT\tSINCE")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Account, p.CreatedAt.Format(time.DateOnly))
		}
		_ = tw.Flush()
	case "commissions list":
		cs, err := ledger.Commissions(ctx, *partner)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 1
		}
		if *asJSON {
			return writeJSONOut(env, cs)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTNER\tAMOUNT\tREF\tEARNED\tPAYOUT")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.PartnerID, money.New(c.Amount, c.Currency), c.SourceRef, c.EarnedAt.Format(time.DateOnly), c.PayoutID)
		}
		_ = tw.Flush()
	}
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

func cmdSLO(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "slo")
	url := fs.String("url", "", "URL to probe (required)")
	rollback := fs.String("rollback-cmd", "", "command to run on failure (split on spaces; no shell)")
	count := fs.Int("count", slo.DefaultCount, "probes")
	interval := fs.Duration("interval", slo.DefaultInterval, "pause between probes")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *url == "" {
		fmt.Fprintln(env.stderr, "slo: --url is required")
		return 2
	}
	cfg := slo.WatchdogConfig{
		Name: *url, URL: *url, Count: *count, Interval: *interval,
		LatencyThreshold: env.cfg.SLOLatency, FailureLimit: env.cfg.SLOFailures, Logger: env.log,
	}
	if *rollback != "" {
		cmd, err := slo.NewCommand(slo.CommandConfig{Argv: strings.Fields(*rollback)})
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 2
		}
		cfg.Rollbacker = cmd
	}
	w, err := slo.NewWatchdog(cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	rep, err := w.Run(ctx)
	for _, p := range rep.Probes {
		fmt.Fprintf(env.stdout, "probe %d: %-5s %4d %8v %s\n", p.N, p.Outcome, p.Status, p.Latency.Round(time.Millisecond), p.Err)
	}
	fmt.Fprintf(env.stdout, "verdict: %s (failures %d, errors %d, rolled back %v)\n", rep.Verdict, rep.Failures, rep.Errors, rep.RolledBack)
	if err != nil {
		fmt.Fprintln(env.stderr, "slo:", err)
	}
	if rep.Verdict == slo.VerdictSuccess {
		return 0
	}
	return 1
}

func cmdAnomaly(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "anomaly")
	window := fs.Int("window", anomaly.DefaultWindow, "rolling window")
	threshold := fs.Float64("threshold", anomaly.DefaultThreshold, "z-score threshold")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	d, err := anomaly.NewZScore(anomaly.Config{Window: *window, Threshold: *threshold})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	// Lines are read whole; one longer than maxAnomalyLine cannot be a
	// number and is refused with its line number (never a silent stop).
	br := bufio.NewReaderSize(env.stdin, maxAnomalyLine)
	line, flagged := 0, 0
	for {
		raw, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "line %d: read error: %v\n", line+1, err)
			return 2
		}
		line++
		if isPrefix {
			fmt.Fprintf(env.stderr, "line %d: longer than %d bytes; not a number\n", line, maxAnomalyLine)
			return 2
		}
		text := strings.TrimSpace(string(raw))
		if text == "" {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			if len(text) > 40 {
				text = text[:40] + "…"
			}
			fmt.Fprintf(env.stderr, "line %d: not a number: %q\n", line, text)
			return 2
		}
		if r := d.Observe(v); r.Anomaly {
			flagged++
			fmt.Fprintf(env.stdout, "line %d: %g z=%.2f grade=%s\n", line, v, r.Z, r.Grade)
		}
	}
	fmt.Fprintf(env.stdout, "%d of %d values anomalous\n", flagged, line)
	return 0
}

// redisPersistent reports whether Redis keeps data across a restart: an
// append-only file or RDB snapshots. An error counts as not persistent
// (managed Redis services may refuse CONFIG; the warning says why to check).
func redisPersistent(ctx context.Context, c redis.UniversalClient) bool {
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false
	}
	save, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		return false
	}
	return aof["appendonly"] == "yes" || strings.TrimSpace(save["save"]) != ""
}

// maxAnomalyLine bounds one input line of `anomaly`.
const maxAnomalyLine = 4096

func cmdDoctor(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "doctor")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg := env.cfg
	pass, fail := 0, 0
	check := func(name string, err error) {
		if err != nil {
			fail++
			fmt.Fprintf(env.stdout, "FAIL  %-22s %v\n", name, err)
			return
		}
		pass++
		fmt.Fprintf(env.stdout, "PASS  %s\n", name)
	}
	_, cerr := loadConfig(os.Getenv)
	check("configuration", cerr)
	db, err := openDB(cfg)
	check("database", err)
	if err == nil {
		var ok string
		err = db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&ok)
		if err == nil && ok != "ok" {
			err = errors.New(ok)
		}
		check("database integrity", err)
		var v int
		v, err = appliedVersion(ctx, db)
		if err == nil && v != schemaVersion() {
			err = fmt.Errorf("schema version %d, this binary expects %d (start the server once to migrate)", v, schemaVersion())
		}
		check("schema version", err)
		db.Close()
	}
	warnings := 0
	warn := func(format string, a ...any) {
		warnings++
		fmt.Fprintf(env.stdout, "WARN  "+format+"\n", a...)
	}
	if cfg.RedisURL != "" {
		c, err := newRedis(cfg.RedisURL)
		if err == nil {
			err = c.Ping(ctx).Err()
			if err == nil && !redisPersistent(ctx, c) {
				warn("redis has no persistence (appendonly no, save \"\"): a restart forgets every revoked token and rate limit; see README \"Running several replicas\"")
			}
			c.Close()
		}
		check("redis", err)
	}
	switch {
	case cfg.OpsAddr == "":
		warn("/metrics is served on the public port (set LEVQOR_OPS_ADDR=127.0.0.1:9090 to move it off)")
	case cfg.OpsToken != "":
		fmt.Fprintf(env.stdout, "INFO  ops listener on %s, bearer-token protected\n", cfg.OpsAddr)
	default:
		fmt.Fprintf(env.stdout, "INFO  ops listener on %s (loopback only)\n", cfg.OpsAddr)
	}
	if tags, _ := filepath.Glob(filepath.Join(cfg.BackupDir, "*.hmac")); len(tags) > 0 && cfg.BackupKey == nil {
		check("backup key", fmt.Errorf("%d backups carry HMAC tags but LEVQOR_BACKUP_KEY is not set: their authenticity cannot be checked", len(tags)))
	}
	if cfg.JWTSecret == "" {
		_, err := loadSecret(filepath.Join(cfg.DataDir, "jwt-ed25519.key"))
		check("signing key file", err)
	}
	_, err = loadSecret(filepath.Join(cfg.DataDir, "dsar.key"))
	check("dsar key file", err)
	store, err := backupStore(cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		var list []backup.Info
		list, err = store.List()
		switch {
		case err != nil:
		case len(list) == 0:
			err = errors.New("no backups yet (run: levqor-server backup)")
		case time.Since(list[len(list)-1].Time) > 26*time.Hour:
			err = fmt.Errorf("newest backup is %v old", time.Since(list[len(list)-1].Time).Round(time.Hour))
		default:
			_, err = store.Verify(ctx, list[len(list)-1].Name)
		}
	}
	check("backup freshness", err)
	if cfg.TelegramToken == "" {
		fmt.Fprintln(env.stdout, "INFO  alerts go to the log (TELEGRAM_BOT_TOKEN not set)")
	}
	fmt.Fprintf(env.stdout, "%d passed, %d failed, %d warnings\n", pass, fail, warnings)
	if fail > 0 {
		return 1
	}
	return 0
}
