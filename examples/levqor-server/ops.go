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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/anomaly"
	"github.com/levqor/levqor/backup"
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
		if err := store.Upload(ctx, info.Name, &backup.DirUploader{Dir: cfg.BackupUpload}, backup.UploadOptions{}); err != nil {
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

// costSources builds the configured spend sources.
func costSources(cfg config) []spendguard.Source {
	var out []spendguard.Source
	if cfg.StripeKey != "" {
		out = append(out, &spendguard.Stripe{Client: stripeClient(cfg)})
	}
	if cfg.OpenAIAdminKey != "" {
		out = append(out, &spendguard.OpenAI{AdminKey: cfg.OpenAIAdminKey, BaseURL: cfg.OpenAIAPI})
	}
	if v := os.Getenv("LEVQOR_INFRA_MONTHLY"); v != "" {
		if m, err := spendguard.ParseMoney(v, "USD"); err == nil {
			out = append(out, spendguard.Fixed{Label: "infrastructure", Monthly: m})
		}
	}
	return out
}

func cmdSpend(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "spend")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	sources := costSources(env.cfg)
	if len(sources) == 0 {
		fmt.Fprintln(env.stderr, "spend: no cost sources configured (STRIPE_SECRET_KEY, OPENAI_ADMIN_KEY, LEVQOR_INFRA_MONTHLY): spend is unknown")
		return 2
	}
	g, err := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: sources, Limit: env.cfg.DailyLimit, Logger: env.log,
		Pauser: &spendguard.FlagsFile{Path: filepath.Join(env.cfg.DataDir, "billing_flags.json")},
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
	sources := append(costSources(env.cfg), &spendguard.SQLMetrics{Label: "database", DB: db, Queries: []spendguard.MetricQuery{
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

func cmdPayouts(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "payouts")
	dry := fs.Bool("dry-run", false, "print what would be paid; change nothing")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if env.cfg.StripeKey == "" && !*dry {
		fmt.Fprintln(env.stderr, "payouts: STRIPE_SECRET_KEY is not set (use --dry-run to preview)")
		return 2
	}
	db, err := openDB(env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	ledger, err := payout.NewLedger(ctx, db, false)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	var p payout.Payouter = &payout.StripeTransfers{Client: stripeClient(env.cfg)}
	rc := payout.RunnerConfig{Ledger: ledger, Payouter: p, DryRun: *dry, Logger: env.log}
	if isTTY(env.stderr) {
		sent := 0
		rc.Hook = func(step payout.Step, id string) error {
			if step == payout.StepRecorded {
				sent++
				fmt.Fprintf(env.stderr, "\rpayouts: %d sent (last %s)", sent, id)
			}
			return nil
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
	if err != nil {
		fmt.Fprintln(env.stderr, "payouts:", err)
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
		cfg.Rollbacker = &slo.Command{Argv: strings.Fields(*rollback)}
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
	sc := bufio.NewScanner(env.stdin)
	line, flagged := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			fmt.Fprintf(env.stderr, "line %d: not a number: %q\n", line, text)
			return 2
		}
		if r := d.Observe(v); r.Anomaly {
			flagged++
			fmt.Fprintf(env.stdout, "line %d: %g z=%.2f severity=%s\n", line, v, r.Z, r.Severity)
		}
	}
	fmt.Fprintf(env.stdout, "%d of %d values anomalous\n", flagged, line)
	return 0
}

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
	if cfg.RedisURL != "" {
		c, err := newRedis(cfg.RedisURL)
		if err == nil {
			err = c.Ping(ctx).Err()
			c.Close()
		}
		check("redis", err)
	}
	if cfg.JWTSecret == "" {
		_, err := loadSecret(filepath.Join(cfg.DataDir, "jwt-ed25519.key"))
		check("signing key file", err)
	}
	_, err = loadSecret(filepath.Join(cfg.DataDir, "dsar.key"))
	check("dsar key file", err)
	store, err := backup.New(backup.Config{Dir: cfg.BackupDir, Logger: slog.New(slog.DiscardHandler)})
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
	fmt.Fprintf(env.stdout, "%d passed, %d failed\n", pass, fail)
	if fail > 0 {
		return 1
	}
	return 0
}
