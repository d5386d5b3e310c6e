package main

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/internal/sqldialect"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one numbered schema change (migrations/<dialect>/NNNN_name.sql).
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{v, e.Name(), string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must be 1, 2, 3, ... without gaps", m.name)
		}
	}
	return out, nil
}

// schemaVersion is the newest migration this binary knows (the same for
// every dialect).
func schemaVersion() int {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrationLock is the PostgreSQL advisory lock key replicas take while
// migrating ("levqor" in ASCII).
const migrationLock = 0x6c6576716f72

// migrate applies the migrations the database has not seen, each in its
// own transaction together with its schema_migrations row, so replicas
// starting at once apply each migration exactly once: PostgreSQL through
// an advisory lock held for the whole run, SQLite because it takes the
// write lock at BEGIN (_txlock=immediate). On PostgreSQL every statement
// runs on the connection holding the lock, so a pool of one connection
// (LEVQOR_DATABASE_MAX_CONNS=1) does not wait for itself.
func migrate(ctx context.Context, db *database) error {
	ms, err := loadMigrations(db.dialect.String())
	if err != nil {
		return err
	}
	var conn interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	} = db.DB
	if db.dialect == sqldialect.Postgres {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
		conn = c
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	for _, m := range ms {
		t, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		err = applyMigration(ctx, tx{t, db.dialect}, m)
		if err == nil {
			err = t.Commit()
		}
		_ = t.Rollback()
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, tx tx, m migration) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UTC().Format(time.RFC3339))
	return err
}

// appliedVersion is the newest migration recorded in the database.
func appliedVersion(ctx context.Context, db *database) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}
