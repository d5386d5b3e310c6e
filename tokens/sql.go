package tokens

import (
	"github.com/levqor/levqor/internal/sqldialect"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// DefaultTablePrefix prefixes the SQLStore's table names.
const DefaultTablePrefix = "levqor_"

// SQLConfig configures a SQLStore.
type SQLConfig struct {
	// DB is the database handle. Required; the store never closes it.
	// SQLite (modernc.org/sqlite, mattn/go-sqlite3) and PostgreSQL (pgx's
	// stdlib driver, lib/pq) are told apart by the driver; another driver
	// is an error. For SQLite, set a busy timeout (e.g.
	// _pragma=busy_timeout(5000)) so concurrent writers wait instead of
	// failing.
	DB *sql.DB
	// TablePrefix prefixes the two table names (<prefix>token_families,
	// <prefix>token_revocations). Letters, digits and underscores only.
	// Default DefaultTablePrefix.
	TablePrefix string
	// OnConnLost, when set, is called when a statement's connection broke
	// under it, before the read is sent again: a database restart or
	// failover breaks every pooled connection at once, and the owner of
	// DB can close the idle ones (SetMaxIdleConns(0), then back) so the
	// retry opens a new connection instead of meeting another broken one.
	// Default nil: the retry takes the next pooled connection.
	OnConnLost func()
}

// SQLStore is a Store in a SQL database through database/sql. Revocations
// and refresh families survive restarts and are shared by every process
// using the same database. Expired rows stay until CleanupExpired.
type SQLStore struct {
	db         *sql.DB
	q          sqlQueries
	revoked    *sql.Stmt // the hot query, parsed once per connection
	onConnLost func()
}

type sqlQueries struct {
	createFamily, selectFamily, advance, markReused, revokeFamily,
	revokeToken, revoked, cleanRevocations, cleanFamilies string
}

var _ Store = (*SQLStore)(nil)

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_]*$`)

// maxRotateAttempts bounds the optimistic retries of Rotate under contention.
const maxRotateAttempts = 8

// NewSQLStore creates the tables if they do not exist and returns the store.
func NewSQLStore(ctx context.Context, cfg SQLConfig) (*SQLStore, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("tokens: SQLConfig.DB is required")
	}
	dialect, err := sqldialect.Detect(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	if cfg.TablePrefix == "" {
		cfg.TablePrefix = DefaultTablePrefix
	}
	if !validPrefix.MatchString(cfg.TablePrefix) {
		return nil, fmt.Errorf("tokens: invalid SQLConfig.TablePrefix %q", cfg.TablePrefix)
	}
	fam, rev := cfg.TablePrefix+"token_families", cfg.TablePrefix+"token_revocations"
	schema := []string{
		`CREATE TABLE IF NOT EXISTS ` + fam + ` (
			id TEXT PRIMARY KEY,
			subject TEXT NOT NULL,
			current_jti TEXT NOT NULL,
			previous_jti TEXT NOT NULL DEFAULT '',
			retired_at BIGINT NOT NULL DEFAULT 0,
			revoked INTEGER NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + fam + `_expires ON ` + fam + ` (expires_at)`,
		`CREATE TABLE IF NOT EXISTS ` + rev + ` (
			jti TEXT PRIMARY KEY,
			family_id TEXT NOT NULL,
			expires_at BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + rev + `_expires ON ` + rev + ` (expires_at)`,
	}
	if err := dialect.CreateSchema(ctx, cfg.DB, "tokens "+cfg.TablePrefix, schema...); err != nil {
		return nil, fmt.Errorf("tokens: create schema: %w", err)
	}
	rb := dialect.Rebind
	s := &SQLStore{db: cfg.DB, onConnLost: cfg.OnConnLost, q: sqlQueries{
		createFamily: rb(`INSERT INTO ` + fam + ` (id, subject, current_jti, expires_at) VALUES (?, ?, ?, ?)`),
		selectFamily: rb(`SELECT current_jti, previous_jti, retired_at, revoked FROM ` + fam + ` WHERE id = ?`),
		advance: rb(`UPDATE ` + fam + ` SET previous_jti = current_jti, current_jti = ?, retired_at = ?, expires_at = ?
			WHERE id = ? AND current_jti = ? AND revoked = 0`),
		markReused: rb(`UPDATE ` + fam + ` SET revoked = 1 WHERE id = ?`),
		revokeFamily: rb(`INSERT INTO ` + fam + ` (id, subject, current_jti, revoked, expires_at) VALUES (?, '', '', 1, ?)
			ON CONFLICT (id) DO UPDATE SET revoked = 1, expires_at = excluded.expires_at`),
		revokeToken: rb(`INSERT INTO ` + rev + ` (jti, family_id, expires_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING`),
		revoked: rb(`SELECT EXISTS (SELECT 1 FROM ` + rev + ` WHERE jti = ?)
			OR NOT EXISTS (SELECT 1 FROM ` + fam + ` WHERE id = ? AND revoked = 0)`),
		cleanRevocations: rb(`DELETE FROM ` + rev + ` WHERE expires_at < ?`),
		cleanFamilies:    rb(`DELETE FROM ` + fam + ` WHERE expires_at < ?`),
	}}
	if s.revoked, err = cfg.DB.PrepareContext(ctx, s.q.revoked); err != nil {
		return nil, fmt.Errorf("tokens: prepare: %w", err)
	}
	return s, nil
}

// Close implements Store: it releases the store's prepared statement; the
// caller's *sql.DB stays open.
func (s *SQLStore) Close() error { return s.revoked.Close() }

// CreateFamily implements Store.
func (s *SQLStore) CreateFamily(ctx context.Context, family, subject, jti string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q.createFamily, family, subject, jti, expiresAt.UnixMilli())
	return err
}

// Rotate implements Store. It reads the family, decides, and applies the
// change with a compare-and-set on current_jti, retrying if another rotation
// won the race.
func (s *SQLStore) Rotate(ctx context.Context, r Rotation) (string, error) {
	family, presented, next, now, grace, expiresAt := r.Family, r.Presented, r.Next, r.Now, r.Grace, r.ExpiresAt
	for range maxRotateAttempts {
		var st familyState
		var retired int64
		var revoked int
		err := s.db.QueryRowContext(ctx, s.q.selectFamily, family).Scan(&st.current, &st.previous, &retired, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return "", ErrUnknownFamily
		}
		if err != nil {
			return "", err
		}
		st.retiredAt, st.revoked = time.UnixMilli(retired), revoked != 0
		switch decideRotation(st, presented, now, grace) {
		case rotateAdvance:
			res, err := s.db.ExecContext(ctx, s.q.advance, next, now.UnixMilli(), expiresAt.UnixMilli(), family, presented)
			if err != nil {
				return "", err
			}
			if n, err := res.RowsAffected(); err != nil {
				return "", err
			} else if n == 1 {
				return next, nil
			}
			// Someone rotated or revoked first: decide again on fresh state.
		case rotateGrace:
			return st.current, nil
		case rotateRevoked:
			return "", ErrRevoked
		default:
			if _, err := s.db.ExecContext(ctx, s.q.markReused, family); err != nil {
				return "", err
			}
			return "", ErrReused
		}
	}
	return "", fmt.Errorf("tokens: rotate family: too much contention after %d attempts", maxRotateAttempts)
}

// RevokeToken implements Store.
func (s *SQLStore) RevokeToken(ctx context.Context, family, jti string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q.revokeToken, jti, family, expiresAt.UnixMilli())
	return err
}

// RevokeFamily implements Store.
func (s *SQLStore) RevokeFamily(ctx context.Context, family string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q.revokeFamily, family, expiresAt.UnixMilli())
	return err
}

// maxReadAttempts bounds how often Revoked sends its query when the
// connection it ran on broke.
const maxReadAttempts = 3

// Revoked implements Store with a single query: the token is revoked, or
// its family is revoked or missing. The query only reads, so when the
// connection breaks under it (a database restart or failover leaves every
// pooled connection broken, and each fails the first statement sent on
// it) it is sent again, on another connection (a new one when
// SQLConfig.OnConnLost closes the idle ones), up to maxReadAttempts times
// in all.
func (s *SQLStore) Revoked(ctx context.Context, family, jti string) (bool, error) {
	var revoked bool
	var err error
	for range maxReadAttempts {
		err = s.revoked.QueryRowContext(ctx, jti, family).Scan(&revoked)
		if !sqldialect.IsConnLost(err) || ctx.Err() != nil {
			break
		}
		if s.onConnLost != nil {
			s.onConnLost()
		}
	}
	return revoked, err
}

// CleanupExpired implements Store.
func (s *SQLStore) CleanupExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, q := range []string{s.q.cleanRevocations, s.q.cleanFamilies} {
		res, err := s.db.ExecContext(ctx, q, now.UnixMilli())
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}
