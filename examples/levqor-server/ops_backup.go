package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/backup"
)

// serverTables are the tables a backup of this server must contain: the
// restore test refuses a valid SQLite file of another application.
var serverTables = []string{"schema_migrations", "users", "sessions", "audit_log", "levqor_partners", "levqor_commissions", "levqor_payouts"}

// backupStore opens the backup directory with the server's key and schema
// check, and (with LEVQOR_DATABASE_URL) PostgreSQL to back up, verify and
// restore with; progress, if set, receives page counts.
func backupStore(cfg config, log *slog.Logger, progress func(copied, total int)) (*backup.Store, error) {
	bc := backup.Config{Dir: cfg.BackupDir, Logger: log, Key: cfg.BackupKey,
		Check: backup.RequireTables(serverTables...), Progress: progress}
	if cfg.DatabaseURL != "" {
		pg, err := backup.NewPostgres(backup.PostgresConfig{URL: cfg.DatabaseURL})
		if err != nil {
			return nil, err
		}
		bc.Postgres = pg
	}
	return backup.New(bc)
}

// runBackup backs the database up, verifies the backup, prunes to
// LEVQOR_BACKUP_KEEP and uploads (pruning the off-site copies too); it
// returns the backup when every step succeeded.
func runBackup(ctx context.Context, cfg config, db *database, log *slog.Logger, progressOut io.Writer) (backup.Info, error) {
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
		return backup.Info{}, err
	}
	var info backup.Info
	if cfg.DatabaseURL != "" {
		pg, err := backup.NewPostgres(backup.PostgresConfig{URL: cfg.DatabaseURL})
		if err != nil {
			return backup.Info{}, err
		}
		info, err = store.BackupSource(ctx, pg)
		if err != nil {
			return backup.Info{}, err
		}
	} else if info, err = store.Backup(ctx, db.DB); err != nil {
		return backup.Info{}, err
	}
	if _, err := store.Verify(ctx, info.Name); err != nil {
		return backup.Info{}, fmt.Errorf("new backup failed verification: %w", err)
	}
	if _, err := store.Prune(ctx, backup.Policy{KeepLast: cfg.BackupKeep}); err != nil {
		return backup.Info{}, err
	}
	if cfg.BackupUpload != "" {
		up, err := backup.NewDirUploader(backup.DirUploaderConfig{Dir: cfg.BackupUpload})
		if err != nil {
			return backup.Info{}, err
		}
		if err := store.Upload(ctx, info.Name, up, backup.UploadOptions{}); err != nil {
			return backup.Info{}, fmt.Errorf("backup %s kept locally, upload failed: %w", info.Name, err)
		}
		// The off-site copies keep what the local directory keeps (when
		// they are one directory, the local prune did it already).
		if !sameDir(cfg.BackupUpload, cfg.BackupDir) {
			if _, err := store.PruneRemote(ctx, up, backup.Policy{KeepLast: cfg.BackupKeep}); err != nil {
				return backup.Info{}, fmt.Errorf("backup %s uploaded, but pruning the off-site copies failed: %w", info.Name, err)
			}
		}
	}
	return info, nil
}

// sameDir reports whether a and b name one directory.
func sameDir(a, b string) bool {
	ai, err1 := os.Stat(a)
	bi, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

func cmdBackup(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "backup")
	ifDue := fs.Duration("if-due", 0, "back up only if the newest backup any replica or run recorded is at least this old and no other process is making one, e.g. 20h: for cron on every replica")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if *ifDue < 0 {
		fmt.Fprintln(env.stderr, "backup: --if-due must be positive, like 20h")
		return 2
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
	db, err := openServerDB(ctx, env.cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	defer db.Close()
	sched := newBackupSchedule(db)
	var info backup.Info
	run := func() (err error) { info, err = runBackup(ctx, env.cfg, db, env.log, env.stderr); return err }
	if *ifDue <= 0 {
		err = run()
	} else {
		// Cron on every replica: the backup record in the database and
		// its lease, as the replicas' scheduled backups use them, let one
		// run back up and the others stand aside.
		row, rerr := sched.read(ctx)
		if rerr != nil {
			fmt.Fprintln(env.stderr, "backup:", rerr)
			return 1
		}
		now := sched.now()
		if due := row.due(time.Time{}, *ifDue, now); due.After(now) {
			fmt.Fprintf(env.stdout, "backup: not made: not due until %s (newest: %s)\n", due.UTC().Format(time.RFC3339), row.describe())
			return 0
		}
		won, cerr := sched.claim(ctx, row)
		if cerr != nil {
			fmt.Fprintln(env.stderr, "backup:", cerr)
			return 1
		}
		if !won {
			fmt.Fprintln(env.stdout, "backup: not made: another process claimed this backup first")
			return 0
		}
		if err = sched.holding(ctx, run); err != nil {
			// Released at once: another replica's cron may try.
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = sched.failed(release, sched.now())
		}
	}
	if err != nil {
		fmt.Fprintln(env.stderr, "backup failed:", err)
		opsAlert(ctx, env, alert.Alert{Severity: alert.SeverityCritical, Title: "Backup failed", Key: "backup-failed", Message: err.Error()})
		return 1
	}
	// Recorded for the replicas' schedule: the next scheduled backup is an
	// interval after this one (and the lease, if this run held it, ends).
	if err := sched.done(ctx, info.Time, info.Name); err != nil {
		fmt.Fprintln(env.stderr, "backup made and verified, but not recorded for the schedule:", err)
	}
	return 0
}

func cmdRestore(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "restore")
	force := fs.Bool("force", false, "replace an existing target file (never one in use: stop the server first)")
	if code, ok := parseArgs(fs, args); !ok {
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
	// With PostgreSQL the target is a database name on the server of
	// LEVQOR_DATABASE_URL; with SQLite, a file path.
	err = store.RestoreFile(ctx, src, target, backup.RestoreOptions{Overwrite: *force, LockFile: target + ".lock"})
	switch {
	case errors.Is(err, backup.ErrInUse):
		fmt.Fprintf(env.stderr, "restore refused: %v\nstop the server (and anything else using %s) first; --force does not override this\n", err, target)
		return 1
	case errors.Is(err, backup.ErrTargetExists):
		fmt.Fprintf(env.stderr, "restore refused: %s exists; --force replaces it (never a database in use)\n", target)
		return 1
	case errors.Is(err, backup.ErrTargetIsBackup), errors.Is(err, backup.ErrTargetIsDir):
		fmt.Fprintf(env.stderr, "restore refused: %v; name the database file to restore to\n", err)
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
