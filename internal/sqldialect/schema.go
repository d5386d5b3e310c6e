package sqldialect

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// addColumnIfNotExists is how a schema adds a column to an existing table
// (PostgreSQL syntax; CreateSchema makes it work on SQLite too).
const addColumnIfNotExists = "ADD COLUMN IF NOT EXISTS"

// CreateSchema runs stmts, the CREATE ... IF NOT EXISTS statements of a
// component's schema, so that processes starting at once all succeed.
// PostgreSQL does not make IF NOT EXISTS safe against a concurrent creator
// (both see no table, one fails on pg_class's unique index), so there the
// statements run in one transaction holding a transaction-level advisory
// lock named by lock; SQLite serialises schema changes itself. A statement
// "ALTER TABLE t ADD COLUMN IF NOT EXISTS c ..." upgrades a table created
// by an earlier version, on both engines.
func (d Dialect) CreateSchema(ctx context.Context, db *sql.DB, lock string, stmts ...string) error {
	if d != Postgres {
		for _, s := range stmts {
			// SQLite has no ADD COLUMN IF NOT EXISTS: add the column and
			// take "duplicate column" for "already there".
			addColumn := strings.Contains(s, addColumnIfNotExists)
			s = strings.Replace(s, addColumnIfNotExists, "ADD COLUMN", 1)
			if _, err := db.ExecContext(ctx, s); err != nil {
				if addColumn && strings.Contains(err.Error(), "duplicate column name") {
					continue
				}
				return err
			}
		}
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "levqor schema "+lock); err != nil {
		return fmt.Errorf("schema lock: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}
