package sqldialect

import (
	"context"
	"database/sql"
	"fmt"
)

// CreateSchema runs stmts, the CREATE ... IF NOT EXISTS statements of a
// component's schema, so that processes starting at once all succeed.
// PostgreSQL does not make IF NOT EXISTS safe against a concurrent creator
// (both see no table, one fails on pg_class's unique index), so there the
// statements run in one transaction holding a transaction-level advisory
// lock named by lock; SQLite serialises schema changes itself.
func (d Dialect) CreateSchema(ctx context.Context, db *sql.DB, lock string, stmts ...string) error {
	if d != Postgres {
		for _, s := range stmts {
			if _, err := db.ExecContext(ctx, s); err != nil {
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
