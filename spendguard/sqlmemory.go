package spendguard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/levqor/levqor/internal/sqldialect"
)

// Locker is implemented by a Memory that can keep Checks of Guards in
// several processes from overlapping: a Guard holds the lock from loading
// its record to saving it, so runs that start together (cron on every
// replica) alert once between them, not once each.
type Locker interface {
	// Lock waits for the lock, or for ctx; unlock releases it.
	Lock(ctx context.Context) (unlock func(), err error)
}

// sqlMemoryLock is the PostgreSQL advisory lock key of SQLMemory.Lock.
const sqlMemoryLock int64 = 0x6c65_7671_7370_6e64 // "levqspnd"

// lockPoll is how often SQLMemory.Lock tries a SQLite lock file again.
const lockPoll = 20 * time.Millisecond

// SQLMemoryConfig configures SQLMemory.
type SQLMemoryConfig struct {
	// DB holds the record in table levqor_spend_memory (one row, created
	// if missing). Required; SQLite or PostgreSQL, told apart by the
	// driver. SQLMemory never closes it. On PostgreSQL the lock holds one
	// of its connections while a Check runs, and the Check needs another:
	// a pool limited to one connection is refused.
	DB *sql.DB
}

// SQLMemory is a Memory in a database, for a guard run from cron on
// several machines: they share one record, and its Lock keeps their runs
// from overlapping (on PostgreSQL a session advisory lock, on SQLite an
// exclusive lock on the file <database>-spendguard.lock beside it); both
// are released when the process holding them dies.
type SQLMemory struct {
	db      *sql.DB
	q       func(string) string
	dialect sqldialect.Dialect
}

var (
	_ Memory = (*SQLMemory)(nil)
	_ Locker = (*SQLMemory)(nil)
)

// NewSQLMemory validates cfg and creates the table if needed.
func NewSQLMemory(ctx context.Context, cfg SQLMemoryConfig) (*SQLMemory, error) {
	if cfg.DB == nil {
		return nil, errors.New("spendguard: SQLMemoryConfig.DB is required")
	}
	dialect, err := sqldialect.Detect(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("spendguard: %w", err)
	}
	if dialect == sqldialect.Postgres && cfg.DB.Stats().MaxOpenConnections == 1 {
		return nil, errors.New("spendguard: SQLMemory on PostgreSQL needs a pool of at least two connections (the lock holds one while a Check runs)")
	}
	if err := dialect.CreateSchema(ctx, cfg.DB, "spendguard memory",
		`CREATE TABLE IF NOT EXISTS levqor_spend_memory (id INTEGER PRIMARY KEY CHECK (id = 1), memo TEXT NOT NULL)`,
	); err != nil {
		return nil, fmt.Errorf("spendguard: create levqor_spend_memory: %w", err)
	}
	return &SQLMemory{db: cfg.DB, q: dialect.Rebind, dialect: dialect}, nil
}

// Load implements Memory: no row is the zero Memo.
func (m *SQLMemory) Load(ctx context.Context) (Memo, error) {
	var text string
	err := m.db.QueryRowContext(ctx, `SELECT memo FROM levqor_spend_memory WHERE id = 1`).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return Memo{}, nil
	}
	if err != nil {
		return Memo{}, fmt.Errorf("spendguard: memory: %w", err)
	}
	var memo Memo
	if err := json.Unmarshal([]byte(text), &memo); err != nil {
		return Memo{}, fmt.Errorf("spendguard: memory: the stored record is not a Memo: %w", err)
	}
	return memo, nil
}

// Save implements Memory.
func (m *SQLMemory) Save(ctx context.Context, memo Memo) error {
	b, err := json.Marshal(memo)
	if err != nil {
		return err
	}
	if _, err := m.db.ExecContext(ctx, m.q(`INSERT INTO levqor_spend_memory (id, memo) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET memo = excluded.memo`), string(b)); err != nil {
		return fmt.Errorf("spendguard: memory: %w", err)
	}
	return nil
}

// Lock implements Locker.
func (m *SQLMemory) Lock(ctx context.Context) (func(), error) {
	if m.dialect == sqldialect.Postgres {
		conn, err := m.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("spendguard: memory lock: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, sqlMemoryLock); err != nil {
			conn.Close()
			return nil, fmt.Errorf("spendguard: memory lock: %w", err)
		}
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, sqlMemoryLock); err != nil {
				// The lock lives as long as its session: end the session.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			conn.Close()
		}, nil
	}
	path, err := m.sqlitePath(ctx)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path+"-spendguard.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spendguard: memory lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("spendguard: memory lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// sqlitePath is the file of the SQLite database's main schema.
func (m *SQLMemory) sqlitePath(ctx context.Context) (string, error) {
	rows, err := m.db.QueryContext(ctx, `PRAGMA database_list`)
	if err != nil {
		return "", fmt.Errorf("spendguard: memory lock: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("spendguard: memory lock: %w", err)
		}
		if name == "main" {
			if file == "" {
				return "", errors.New("spendguard: memory lock: an in-memory SQLite database has no file to lock beside")
			}
			return file, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("spendguard: memory lock: %w", err)
	}
	return "", errors.New("spendguard: memory lock: SQLite reports no main database")
}
