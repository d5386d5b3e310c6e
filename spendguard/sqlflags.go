package spendguard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/levqor/levqor/internal/sqldialect"
)

// DefaultSQLFlagsCacheFor is how long SQLFlags.State reuses its last read.
const DefaultSQLFlagsCacheFor = time.Second

// SQLFlagsConfig configures SQLFlags.
type SQLFlagsConfig struct {
	// DB holds the pause state in table levqor_billing_pause (one row,
	// created if missing). Required; SQLite or PostgreSQL, told apart by
	// the driver. SQLFlags never closes it.
	DB *sql.DB
	// Now stamps pauses and resumes. Default time.Now.
	Now func() time.Time
	// CacheFor is how long State answers from its last read, so that
	// BlockWhilePaused costs no query per request; another process's
	// pause or resume is seen at most this late (this process's at once).
	// Default DefaultSQLFlagsCacheFor (1s); negative reads every time.
	CacheFor time.Duration
}

// SQLFlags keeps the pause state in a database, for services that run on
// several machines: a pause made by a cron job on one is seen by every
// replica (a FlagsFile is seen only by processes sharing its disk).
// Pause and Resume are single statements, safe from several processes at
// once.
type SQLFlags struct {
	db       *sql.DB
	q        func(string) string
	now      func() time.Time
	cacheFor time.Duration

	mu     sync.Mutex
	cached PauseState
	readAt time.Time // zero: nothing cached
	// writes counts this process's Pause and Resume calls: a read that
	// overlapped one is not cached, as it may predate it.
	writes uint64
}

var (
	_ Pauser       = (*SQLFlags)(nil)
	_ PauseChecker = (*SQLFlags)(nil)
)

// NewSQLFlags validates cfg and creates the table if needed.
func NewSQLFlags(ctx context.Context, cfg SQLFlagsConfig) (*SQLFlags, error) {
	if cfg.DB == nil {
		return nil, errors.New("spendguard: SQLFlagsConfig.DB is required")
	}
	dialect, err := sqldialect.Detect(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("spendguard: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = DefaultSQLFlagsCacheFor
	}
	// One row (id 1); paused is 0 or 1 and times are RFC 3339 text, the
	// same on both engines.
	if err := dialect.CreateSchema(ctx, cfg.DB, "spendguard",
		`CREATE TABLE IF NOT EXISTS levqor_billing_pause (
			id INTEGER PRIMARY KEY CHECK (id = 1), paused INTEGER NOT NULL,
			reason TEXT NOT NULL, paused_at TEXT NOT NULL, resumed_at TEXT NOT NULL, resumed_by TEXT NOT NULL)`,
	); err != nil {
		return nil, fmt.Errorf("spendguard: create levqor_billing_pause: %w", err)
	}
	return &SQLFlags{db: cfg.DB, q: dialect.Rebind, now: cfg.Now, cacheFor: cfg.CacheFor}, nil
}

// Pause implements Pauser. A pause already standing keeps its start time
// and takes the new reason.
func (f *SQLFlags) Pause(ctx context.Context, reason string) error {
	now := stamp(f.now())
	return f.write(ctx, `INSERT INTO levqor_billing_pause (id, paused, reason, paused_at, resumed_at, resumed_by)
		VALUES (1, 1, ?, ?, '', '')
		ON CONFLICT (id) DO UPDATE SET paused = 1, reason = excluded.reason,
			paused_at = CASE WHEN levqor_billing_pause.paused = 1 THEN levqor_billing_pause.paused_at ELSE excluded.paused_at END`,
		reason, now)
}

// Resume lifts the pause; operator is recorded. The time of the last pause
// is kept.
func (f *SQLFlags) Resume(ctx context.Context, operator string) error {
	now := stamp(f.now())
	return f.write(ctx, `INSERT INTO levqor_billing_pause (id, paused, reason, paused_at, resumed_at, resumed_by)
		VALUES (1, 0, '', '', ?, ?)
		ON CONFLICT (id) DO UPDATE SET paused = 0, reason = '', resumed_at = excluded.resumed_at, resumed_by = excluded.resumed_by`,
		now, operator)
}

func (f *SQLFlags) write(ctx context.Context, q string, args ...any) error {
	_, err := f.db.ExecContext(ctx, f.q(q), args...)
	// This process sees its own change at once (and, on an error, does not
	// trust a cache that may predate a change that did land).
	f.mu.Lock()
	f.readAt = time.Time{}
	f.writes++
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("spendguard: write billing pause: %w", err)
	}
	return nil
}

// State implements PauseChecker: no row means not paused; a database error
// is an error (BlockWhilePaused then fails closed).
func (f *SQLFlags) State(ctx context.Context) (PauseState, error) {
	now := f.now()
	f.mu.Lock()
	if !f.readAt.IsZero() && now.Sub(f.readAt) < f.cacheFor && !now.Before(f.readAt) {
		st := f.cached
		f.mu.Unlock()
		return st, nil
	}
	writes := f.writes
	f.mu.Unlock()
	var st PauseState
	var paused int
	var since, resumed string
	err := f.db.QueryRowContext(ctx, `SELECT paused, reason, paused_at, resumed_at, resumed_by FROM levqor_billing_pause WHERE id = 1`).
		Scan(&paused, &st.Reason, &since, &resumed, &st.Operator)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return PauseState{}, fmt.Errorf("spendguard: read billing pause: %w", err)
	default:
		st.Paused = paused == 1
		if st.Since, err = parseStamp(since); err == nil {
			st.Resumed, err = parseStamp(resumed)
		}
		if err != nil {
			return PauseState{}, fmt.Errorf("spendguard: read billing pause: %w", err)
		}
	}
	f.mu.Lock()
	if f.writes == writes {
		f.cached, f.readAt = st, now
	}
	f.mu.Unlock()
	return st, nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseStamp reads a stamp; "" is the zero time (never paused or resumed).
func parseStamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
