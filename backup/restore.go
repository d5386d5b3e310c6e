package backup

import (
	"github.com/levqor/levqor/internal/ctxio"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/levqor/levqor/internal/atomicfile"
)

// RestoreOptions modify Restore.
type RestoreOptions struct {
	// Overwrite replaces an existing file at the target. It never
	// overrides the in-use check.
	Overwrite bool
	// LockFile, when set, is a lock file the database's users hold (a
	// shared flock) while they run, as levqor-server does: Restore takes
	// it exclusively for the whole restore and refuses with ErrInUse when
	// it cannot. Default: no lock file (SQLite's own locking is still
	// checked).
	LockFile string
}

// Restore verifies the backup called name in the store's directory and
// restores it to target; see RestoreFile.
func (s *Store) Restore(ctx context.Context, name, target string, opts RestoreOptions) error {
	if err := validName(name); err != nil {
		return err
	}
	return s.RestoreFile(ctx, s.path(name), target, opts)
}

// RestoreFile verifies the backup at path (VerifyFile, so with a Key an
// untagged or doctored backup is refused) and writes it to target
// atomically (temporary file in the target's directory, fsync, rename).
// It refuses an existing target unless opts.Overwrite, and a target in use
// always (ErrInUse): another process holding opts.LockFile, or an open
// SQLite connection to a WAL database, or a transaction in progress. It
// removes the target's stale -wal and -shm files when it replaces it.
// A target that is the backup itself (ErrTargetIsBackup) or a directory
// (ErrTargetIsDir) is refused before anything is touched: the in-use check
// opens an existing target as a database (and may take it out of WAL
// mode), which would change the backup's bytes and leave it failing its
// own checksum. That check runs only after the backup has verified, so a
// refused backup leaves the target's bytes as they were.
//
// A pg_dump archive (a ".dump" backup) is restored with Config.Postgres
// into the database named target on its server: refused when it exists
// unless opts.Overwrite, and when it has open connections always.
func (s *Store) RestoreFile(ctx context.Context, path, target string, opts RestoreOptions) error {
	if f, err := openRegular(path); err == nil {
		pg := isPGDump(f)
		f.Close()
		if pg {
			return s.restorePG(ctx, path, target, opts)
		}
	}
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %s", ErrTargetIsDir, target)
		}
		if src, err := os.Stat(path); err == nil && os.SameFile(fi, src) {
			return fmt.Errorf("%w: %s", ErrTargetIsBackup, target)
		}
	}
	if opts.LockFile != "" {
		unlock, err := lockExclusive(opts.LockFile)
		if err != nil {
			return err
		}
		defer unlock()
	}
	_, err := os.Lstat(target)
	exists := err == nil
	if exists && !opts.Overwrite {
		return fmt.Errorf("%w: %s (set Overwrite to replace it)", ErrTargetExists, target)
	}
	if _, err := s.VerifyFile(ctx, path); err != nil {
		return err
	}
	// Only now, with a backup worth restoring: the check may take an
	// existing target out of WAL mode.
	if exists {
		if err := sqliteInUse(ctx, target); err != nil {
			return err
		}
	}
	src, err := openRegular(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := atomicfile.TempName(target)
	defer removeTemp(tmp)
	if err := copyTo(ctx, src, tmp); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if _, _, err := syncAndHash(tmp); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(target + side); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: restore: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "backup: restored", "from", path, "target", target)
	return nil
}

// lockExclusive takes an exclusive, non-blocking flock on path.
func lockExclusive(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another process holds %s", ErrInUse, path)
		}
		return nil, fmt.Errorf("backup: lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// sqliteInUse asks SQLite itself whether another connection uses the
// database: switching a WAL database out of WAL mode needs every other
// connection closed, and an exclusive transaction needs no other one in
// progress. Nothing is waited for (busy_timeout 0). A file SQLite cannot
// open is not in use by SQLite.
func sqliteInUse(ctx context.Context, target string) error {
	db, err := sql.Open("sqlite", "file:"+target+"?_pragma=busy_timeout(0)")
	if err != nil {
		return nil
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil
	}
	defer conn.Close()
	busy := func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "busy"))
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); busy(err) {
		return fmt.Errorf("%w: %s is locked by another connection", ErrInUse, target)
	} else if err != nil {
		return nil // not a database SQLite can read: nothing uses it as one
	}
	if strings.EqualFold(mode, "wal") {
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); busy(err) || (err == nil && !strings.EqualFold(mode, "delete")) {
			return fmt.Errorf("%w: %s has other open connections", ErrInUse, target)
		}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); busy(err) {
		return fmt.Errorf("%w: %s has a transaction in progress", ErrInUse, target)
	} else if err == nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
	}
	return nil
}

func (s *Store) restorePG(ctx context.Context, path, target string, opts RestoreOptions) error {
	if s.cfg.Postgres == nil {
		return errors.New("backup: a PostgreSQL dump needs Config.Postgres to be restored")
	}
	if _, err := s.VerifyFile(ctx, path); err != nil {
		return err
	}
	f, err := openRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.cfg.Postgres.load(ctx, ctxio.Reader(ctx, f), target, opts.Overwrite); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "backup: restored", "from", path, "database", target)
	return nil
}
