package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/spendguard"
	"github.com/redis/go-redis/v9"
)

// redisUnpersisted lists the Redis nodes (each master of a cluster) that
// keep no data across a restart: neither an append-only file nor RDB
// snapshots. A node refusing CONFIG counts as unpersisted (managed Redis
// services may; the warning says what to check).
func redisUnpersisted(ctx context.Context, c redis.UniversalClient) []string {
	var mu sync.Mutex
	var bare []string
	check := func(ctx context.Context, n *redis.Client) error {
		aof, err := n.ConfigGet(ctx, "appendonly").Result()
		save, err2 := n.ConfigGet(ctx, "save").Result()
		if err != nil || err2 != nil || (aof["appendonly"] != "yes" && strings.TrimSpace(save["save"]) == "") {
			mu.Lock()
			bare = append(bare, n.Options().Addr)
			mu.Unlock()
		}
		return nil
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, check)
	case *redis.Client:
		_ = check(ctx, c)
	}
	sort.Strings(bare)
	return bare
}

func cmdDoctor(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "doctor")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	d := &doctor{out: env.stdout, cfg: env.cfg}
	_, cerr := loadConfig(os.Getenv)
	d.check("configuration", cerr)
	d.database(ctx)
	d.redis(ctx)
	d.opsListener()
	d.keys()
	d.backups(ctx)
	d.billing(ctx)
	d.alerts(ctx)
	d.stripe(ctx)
	fmt.Fprintf(d.out, "%d passed, %d failed, %d warnings\n", d.pass, d.fail, d.warnings)
	if d.fail > 0 {
		return 1
	}
	return 0
}

// privateFiles warns about each file others may read: the database holds
// every account's email and password hash. The server makes its database
// 0600; one made by an earlier version, or copied in, may not be.
func (d *doctor) privateFiles(paths ...string) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.warn("%s is readable by other users (mode %04o): chmod 600 %s", p, fi.Mode().Perm(), p)
		}
	}
}

// billing warns while the spend guard's pause stands: it lasts until
// someone runs `spend resume`, whatever later days spend. doctor writes
// nothing, so a flags file of an earlier version is reported, not
// imported (the next spend, or the server's start, imports it).
func (d *doctor) billing(ctx context.Context) {
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, legacyBillingFlags)); err == nil {
		d.warn("%s is from an earlier version: the billing pause now lives in the database; the next spend or server start imports it", legacyBillingFlags)
	}
	db, err := openServerDB(ctx, d.cfg)
	if err != nil {
		return // the database check has failed already
	}
	defer db.Close()
	// A database the server has not started on since the pause moved there
	// has no table yet: not paused, and doctor does not create it.
	var st spendguard.PauseState
	exists, err := hasTable(ctx, db, "levqor_billing_pause")
	if err == nil && exists {
		var flags *spendguard.SQLFlags
		if flags, err = spendguard.NewSQLFlags(ctx, spendguard.SQLFlagsConfig{DB: db.DB}); err == nil {
			st, err = flags.State(ctx)
		}
	}
	switch {
	case err != nil:
		d.check("billing pause", err)
	case st.Paused:
		d.warn("billing paused since %s: %s (resume with: levqor-server spend resume --by NAME)", st.Since.Format(time.RFC3339), st.Reason)
	}
}

// alerts checks, sending no message, that Telegram knows the bot token
// and the bot can reach TELEGRAM_CHAT_ID: a wrong one would otherwise
// show only when the first alert fails to arrive.
func (d *doctor) alerts(ctx context.Context) {
	if d.cfg.TelegramToken == "" {
		d.info("alerts go to the log (TELEGRAM_BOT_TOKEN not set)")
		return
	}
	tg, err := alert.NewTelegram(alert.TelegramConfig{Token: d.cfg.TelegramToken, ChatID: d.cfg.TelegramChat, BaseURL: d.cfg.TelegramAPI})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = tg.Check(ctx)
	}
	d.check("alerts (Telegram)", err)
}

// stripe checks STRIPE_SECRET_KEY by reading the platform's own account
// (GET /v1/account, no change): spend, costs, payouts and partner sign-up
// all fail with a wrong one.
func (d *doctor) stripe(ctx context.Context) {
	if d.cfg.StripeKey == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	if _, err = stripeClient(d.cfg).V1Accounts.Retrieve(ctx, nil); err != nil {
		err = errors.New(stripeErrorText(err))
	}
	d.check("Stripe key", err)
}

// hasTable reports whether the database has table name.
func hasTable(ctx context.Context, db *database, name string) (bool, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if db.dialect == sqldialect.Postgres {
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	err := db.QueryRowContext(ctx, q, name).Scan(&n)
	return n > 0, err
}

// doctor prints one PASS, FAIL, WARN or INFO line per check and counts them.
type doctor struct {
	out                  io.Writer
	cfg                  config
	pass, fail, warnings int
}

func (d *doctor) check(name string, err error) {
	if err != nil {
		d.fail++
		fmt.Fprintf(d.out, "FAIL  %-22s %v\n", name, err)
		return
	}
	d.pass++
	fmt.Fprintf(d.out, "PASS  %s\n", name)
}

func (d *doctor) warn(format string, a ...any) {
	d.warnings++
	fmt.Fprintf(d.out, "WARN  "+format+"\n", a...)
}

func (d *doctor) info(format string, a ...any) { fmt.Fprintf(d.out, "INFO  "+format+"\n", a...) }

func (d *doctor) database(ctx context.Context) {
	db, err := openServerDB(ctx, d.cfg)
	d.check("database", err)
	if err != nil {
		return
	}
	defer db.Close()
	if db.dialect == sqldialect.SQLite {
		var ok string
		err = db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&ok)
		if err == nil && ok != "ok" {
			err = errors.New(ok)
		}
		d.check("database integrity", err)
		d.privateFiles(d.cfg.dbPath(), d.cfg.dbPath()+"-wal", d.cfg.dbPath()+"-shm")
	}
	v, err := appliedVersion(ctx, db)
	if err == nil && v != schemaVersion() {
		err = fmt.Errorf("schema version %d, this binary expects %d (start the server once to migrate)", v, schemaVersion())
	}
	d.check("schema version", err)
	if dsarKey, signing := d.readKeys(); err == nil && dsarKey != nil && signing != nil {
		accept, aerr := acceptSecret(d.cfg)
		switch {
		case aerr != nil:
			d.check("accepted signing key", aerr)
		case accept != nil:
			d.info("a second signing key is accepted (a rotation): remove it seven days after the last token it signed (README: Rotating the signing key)")
		}
		d.check("keys shared with other replicas", checkKeys(ctx, db, dsarKey, signing, accept))
	}
}

// readKeys reads the DSAR and signing secrets as the server would use
// them, without creating a missing key file (which the server would do):
// a check must not write, and a key made now would hide that one was lost.
// A key it cannot read is nil; keys reports why.
func (d *doctor) readKeys() (dsarKey, signing []byte) {
	dsarKey, signing = d.cfg.DSARKey, []byte(d.cfg.JWTSecret)
	if dsarKey == nil {
		dsarKey, _ = readSecret(filepath.Join(d.cfg.DataDir, dsarKeyFile))
	}
	if d.cfg.JWTSecret == "" {
		signing, _ = readSecret(filepath.Join(d.cfg.DataDir, signingKeyFile))
	}
	return dsarKey, signing
}

func (d *doctor) redis(ctx context.Context) {
	if d.cfg.RedisURL == "" {
		return
	}
	c, err := newRedis(d.cfg.RedisURL)
	if err == nil {
		err = c.Ping(ctx).Err()
		if bare := redisUnpersisted(ctx, c); err == nil && len(bare) > 0 {
			d.warn("redis has no persistence on " + strings.Join(bare, ", ") + " (appendonly no, save \"\"): a restart of such a node logs out every user whose session it held and resets rate limits; see README \"Running several replicas\"")
		}
		c.Close()
	}
	d.check("redis", err)
}

func (d *doctor) opsListener() {
	switch {
	case d.cfg.OpsAddr == "":
		d.warn("/metrics is served on the public port (set LEVQOR_OPS_ADDR=127.0.0.1:9090 to move it off)")
	case d.cfg.OpsToken != "":
		d.info("ops listener on %s, bearer-token protected", d.cfg.OpsAddr)
	default:
		d.info("ops listener on %s (loopback only)", d.cfg.OpsAddr)
	}
}

func (d *doctor) keys() {
	if tags, _ := filepath.Glob(filepath.Join(d.cfg.BackupDir, "*.hmac")); len(tags) > 0 && d.cfg.BackupKey == nil {
		d.check("backup key", fmt.Errorf("%d backups carry HMAC tags but LEVQOR_BACKUP_KEY is not set: their authenticity cannot be checked", len(tags)))
	}
	if d.cfg.JWTSecret == "" {
		_, err := readSecret(filepath.Join(d.cfg.DataDir, signingKeyFile))
		d.check("signing key file", keyFileError(err, "the tokens it signed no longer verify, so every user must log in again"))
	}
	if d.cfg.DSARKey == nil {
		_, err := readSecret(filepath.Join(d.cfg.DataDir, dsarKeyFile))
		d.check("dsar key file", keyFileError(err, "erased people's pseudonyms in the kept records can no longer be matched, and the server refuses to start with a new key"))
	}
}

// keyFileError explains a missing key file: on a data directory the
// server has run with, the key is lost, with the given consequence.
func keyFileError(err error, lost string) error {
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var pe *os.PathError
	path := "key file"
	if errors.As(err, &pe) {
		path = pe.Path
	}
	return fmt.Errorf("%s is missing: the server makes it on first start; if the server has run with this data directory, the key is lost: %s (restore it from your copy)", path, lost)
}

// maxBackupAge is how old the newest backup may be: a day and two hours
// (daily backups), or LEVQOR_BACKUP_INTERVAL and two hours when that is
// longer, so a weekly schedule is not a daily failure.
func maxBackupAge(c config) time.Duration {
	return max(24*time.Hour, c.BackupInterval) + 2*time.Hour
}

// backups checks that the newest backup is not older than maxBackupAge
// and verifies.
func (d *doctor) backups(ctx context.Context) {
	store, err := backupStore(d.cfg, slog.New(slog.DiscardHandler), nil)
	var list []backup.Info
	if err == nil {
		list, err = store.List()
		switch {
		case err != nil:
		case len(list) == 0:
			err = errors.New("no backups yet (run: levqor-server backup)")
		case time.Since(list[len(list)-1].Time) > maxBackupAge(d.cfg):
			err = fmt.Errorf("newest backup is %v old (at most %v expected)", time.Since(list[len(list)-1].Time).Round(time.Hour), maxBackupAge(d.cfg))
		default:
			_, err = store.Verify(ctx, list[len(list)-1].Name)
		}
	}
	// Replicas take turns at scheduled backups: the newest may be on
	// another machine, and doctor cannot verify it from here.
	elsewhere := false
	if err != nil {
		r, ok := d.recordedBackup(ctx)
		if elsewhere = ok && time.Since(r.last) <= maxBackupAge(d.cfg) && !slices.ContainsFunc(list, func(b backup.Info) bool { return b.Name == r.lastName }); elsewhere {
			d.warn("backup freshness: none recent in %s (%v); the newest backup, %s, was made on another machine: run doctor there to verify it", d.cfg.BackupDir, err, r.describe())
			if d.cfg.BackupUpload != "" {
				d.check("off-site copy", offsiteSelfConsistent(ctx, d.cfg.BackupUpload, r.lastName))
			}
		}
	}
	if !elsewhere {
		d.check("backup freshness", err)
		if d.cfg.BackupUpload != "" && len(list) > 0 {
			d.check("off-site copy", offsiteCopy(ctx, d.cfg.BackupUpload, list[len(list)-1]))
		}
	}
	if d.cfg.BackupUpload != "" && sameDir(d.cfg.BackupUpload, d.cfg.BackupDir) {
		d.warn("LEVQOR_BACKUP_UPLOAD_DIR is the backup directory itself: uploads make no second copy")
	}
}

// recordedBackup reads the newest backup recorded in the schedule (made
// by any replica, or the backup command); false when there is none or the
// database cannot tell (its failure is reported by the database check).
func (d *doctor) recordedBackup(ctx context.Context) (scheduleRow, bool) {
	db, err := openServerDB(ctx, d.cfg)
	if err != nil {
		return scheduleRow{}, false
	}
	defer db.Close()
	if ok, err := hasTable(ctx, db, "backup_schedule"); err != nil || !ok {
		return scheduleRow{}, false
	}
	r, err := newBackupSchedule(db).read(ctx)
	return r, err == nil && !r.last.IsZero()
}

// offsiteSelfConsistent checks a backup made on another replica by its
// copy in the upload directory: there, with a checksum sidecar its bytes
// match. doctor reads it and writes nothing there.
func offsiteSelfConsistent(ctx context.Context, dir, name string) error {
	b, err := os.ReadFile(filepath.Join(dir, name+".sha256"))
	if err != nil {
		return fmt.Errorf("no off-site copy of the newest backup %s with its checksum sidecar: %w", name, err)
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return offsiteCopy(ctx, dir, backup.Info{Name: name, SHA256: sum})
}

// offsiteCopy checks that the upload directory holds newest, byte for
// byte (its SHA-256 against the manifest's), with the checksum sidecar
// that lets it be verified and restored on its own.
func offsiteCopy(ctx context.Context, dir string, newest backup.Info) error {
	up, err := backup.NewDirUploader(backup.DirUploaderConfig{Dir: dir})
	if err != nil {
		return err
	}
	sum, err := up.SHA256(ctx, newest.Name)
	if err != nil {
		return fmt.Errorf("no off-site copy of the newest backup %s: %w", newest.Name, err)
	}
	if sum != newest.SHA256 {
		return fmt.Errorf("the off-site copy of %s differs from the backup (sha256 %s, manifest %s)", newest.Name, sum, newest.SHA256)
	}
	if _, err := os.Stat(filepath.Join(dir, newest.Name+".sha256")); err != nil {
		return fmt.Errorf("the off-site copy of %s has no checksum sidecar, so it cannot be verified or restored on its own: %w", newest.Name, err)
	}
	return nil
}
