package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL (LEVQOR_DATABASE_URL)
	_ "modernc.org/sqlite"             // SQLite, the embedded default

	"github.com/levqor/levqor/internal/sqldialect"
)

// database is the server's *sql.DB with its dialect: queries are written
// with ? placeholders and rebound for PostgreSQL.
type database struct {
	*sql.DB
	dialect  sqldialect.Dialect
	maxConns int // idle connections kept (closeIdle restores it)
}

// openDB opens PostgreSQL when LEVQOR_DATABASE_URL is set, else the SQLite
// file in the data directory.
func openDB(c config) (*database, error) {
	var db *sql.DB
	var err error
	if c.DatabaseURL != "" {
		db, err = sql.Open("pgx", c.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("LEVQOR_DATABASE_URL: %w", err)
		}
		db.SetMaxOpenConns(c.DatabaseMaxConns)
		db.SetMaxIdleConns(c.DatabaseMaxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory %s: %w", c.DataDir, err)
		}
		// SQLite would create the file readable by everyone (0644), and its
		// -wal and -shm files take the database file's mode: made here
		// first, the accounts' emails and password hashes are the owner's
		// alone, whatever the data directory's mode.
		if f, err := os.OpenFile(c.dbPath(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("database %s: %w", c.dbPath(), err)
		}
		db, err = sql.Open("sqlite", "file:"+c.dbPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		// database/sql keeps 2 idle connections by default: under
		// concurrent requests it opened (and parsed the schema of) a new
		// SQLite connection per query, a fifth of /api/me's CPU.
		db.SetMaxOpenConns(c.DatabaseMaxConns)
		db.SetMaxIdleConns(c.DatabaseMaxConns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", c.databaseName(), redactURL(err, c.DatabaseURL))
	}
	d, err := sqldialect.Detect(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &database{DB: db, dialect: d, maxConns: c.DatabaseMaxConns}, nil
}

// openServerDB opens, for an ops command, the database the server made:
// it never creates one. An ops command run with the wrong environment (a
// cron job without the server's LEVQOR_DATA_DIR) would otherwise get a
// new, empty database, where payouts finds nothing to pay and exits 0 and
// partners are entered where the server never looks. A database of
// another schema version is opened (a backup before an upgrade must
// work); doctor reports the mismatch.
func openServerDB(ctx context.Context, c config) (*database, error) {
	if c.DatabaseURL == "" {
		if _, err := os.Stat(c.dbPath()); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: the server has not run with this data directory (check LEVQOR_DATA_DIR, or LEVQOR_DATABASE_URL for PostgreSQL)", c.dbPath())
		} else if err != nil {
			return nil, fmt.Errorf("database %s: %w", c.dbPath(), err)
		}
	}
	db, err := openDB(c)
	if err != nil {
		return nil, err
	}
	if v, err := appliedVersion(ctx, db); err != nil || v < 1 {
		db.Close()
		return nil, fmt.Errorf("database %s has no levqor-server schema: the server has not run on it (check LEVQOR_DATA_DIR or LEVQOR_DATABASE_URL)", c.databaseName())
	}
	return db, nil
}

// redactURL keeps a database URL's password out of an error.
func redactURL(err error, url string) error {
	if url == "" {
		return err
	}
	msg := err.Error()
	if i := strings.Index(url, "://"); i >= 0 {
		if at := strings.LastIndex(url, "@"); at > i {
			if colon := strings.Index(url[i+3:at], ":"); colon >= 0 {
				pw := url[i+3+colon+1 : at]
				if pw != "" {
					msg = strings.ReplaceAll(msg, pw, "<redacted>")
				}
			}
		}
	}
	return fmt.Errorf("%s", msg)
}

func (d *database) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.dialect.Rebind(q), args...)
}

func (d *database) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.dialect.Rebind(q), args...)
}

func (d *database) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.dialect.Rebind(q), args...)
}

// closeIdle closes every idle pooled connection; new ones replace them.
// After a database restart or failover every idle connection is broken
// and would fail the next statement sent on it.
func (d *database) closeIdle() {
	d.SetMaxIdleConns(0)
	d.SetMaxIdleConns(d.maxConns)
}

// closeIdleIfConnLost closes the idle connections when err says a
// connection broke (sqldialect.IsConnLost).
func (d *database) closeIdleIfConnLost(err error) {
	if sqldialect.IsConnLost(err) {
		d.closeIdle()
	}
}

// forShare is the row-lock clause a check-then-write transaction needs
// (PostgreSQL); SQLite serialises writers itself.
func (d *database) forShare() string { return d.dialect.ForShare() }

// tx is a transaction whose queries are rebound like database's.
type tx struct {
	*sql.Tx
	dialect sqldialect.Dialect
}

func (t tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.dialect.Rebind(q), args...)
}

func (t tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.dialect.Rebind(q), args...)
}

func (t tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.dialect.Rebind(q), args...)
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (d *database) inTx(ctx context.Context, fn func(tx) error) error {
	t, err := d.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := fn(tx{t, d.dialect}); err != nil {
		return err
	}
	return t.Commit()
}
