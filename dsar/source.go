package dsar

import (
	"github.com/levqor/levqor/internal/sqldialect"

	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one exported row: column name to value.
type Record map[string]any

// Source is one dataset holding personal data of subjects.
type Source interface {
	// Name labels the dataset in exports and audit entries.
	Name() string
	// Export calls emit for every record of subject, streaming.
	Export(ctx context.Context, subject string, emit func(Record) error) error
	// Erase deletes or anonymises subject's records and reports how many
	// rows it changed. Erasing twice changes nothing the second time.
	Erase(ctx context.Context, subject string) (int64, error)
}

// TxSource is a Source in a SQL database. Sources sharing one *sql.DB are
// erased together in one transaction.
type TxSource interface {
	Source
	DB() *sql.DB
	EraseTx(ctx context.Context, tx *sql.Tx, subject string) (int64, error)
}

// Counter is a Source that counts a subject's records without exporting them.
type Counter interface {
	Count(ctx context.Context, subject string) (int, error)
}

// EraseStrategy says how a SQLSource erases.
type EraseStrategy int

const (
	// EraseDelete deletes the subject's rows (the default).
	EraseDelete EraseStrategy = iota
	// EraseNull keeps the rows and sets EraseColumns to NULL, for rows the
	// controller must keep (e.g. invoices under a legal obligation).
	EraseNull
	// EraseHash keeps the rows and replaces each EraseColumns value with
	// its HMAC-SHA256 under HashKey: pseudonymous, still countable and
	// joinable, not reversible without the key.
	EraseHash
)

// SQLSourceConfig configures a SQLSource.
type SQLSourceConfig struct {
	// Name labels the dataset. Default: Table.
	Name string
	// DB holds the table. Required; SQLite or PostgreSQL, told apart by
	// the driver.
	DB *sql.DB
	// Table and SubjectColumn select the subject's rows. Required.
	Table, SubjectColumn string
	// Columns are exported. Required.
	Columns []string
	// Strategy is how Erase works. Default EraseDelete.
	Strategy EraseStrategy
	// EraseColumns are nulled or hashed by EraseNull and EraseHash; they
	// must include SubjectColumn so no row stays linked to the subject.
	EraseColumns []string
	// KeyColumn is the table's primary key, required by EraseHash.
	KeyColumn string
	// HashKey keys EraseHash's HMAC; at least 16 bytes.
	HashKey []byte
}

// SQLSource exports and erases a subject's rows of one table.
type SQLSource struct {
	cfg                                   SQLSourceConfig
	dialect                               sqldialect.Dialect
	exportQ, countQ, deleteQ, nullQ, keyQ string
	hashQ                                 string
}

var (
	_ TxSource = (*SQLSource)(nil)
	_ Counter  = (*SQLSource)(nil)
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func quote(id string) string { return `"` + id + `"` }

// NewSQLSource validates cfg; identifiers must be plain SQL names.
func NewSQLSource(cfg SQLSourceConfig) (*SQLSource, error) {
	if cfg.DB == nil {
		return nil, errors.New("dsar: SQLSourceConfig.DB is required")
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Table
	}
	idents := append([]string{cfg.Table, cfg.SubjectColumn}, cfg.Columns...)
	idents = append(idents, cfg.EraseColumns...)
	if cfg.KeyColumn != "" {
		idents = append(idents, cfg.KeyColumn)
	}
	for _, id := range idents {
		if !identRE.MatchString(id) {
			return nil, fmt.Errorf("dsar: %q is not a plain SQL identifier", id)
		}
	}
	if len(cfg.Columns) == 0 {
		return nil, fmt.Errorf("dsar: source %s exports no Columns", cfg.Name)
	}
	switch cfg.Strategy {
	case EraseDelete:
	case EraseNull, EraseHash:
		found := false
		for _, c := range cfg.EraseColumns {
			found = found || c == cfg.SubjectColumn
		}
		if !found {
			return nil, fmt.Errorf("dsar: source %s: EraseColumns must include the subject column %s", cfg.Name, cfg.SubjectColumn)
		}
		if cfg.Strategy == EraseHash && (cfg.KeyColumn == "" || len(cfg.HashKey) < 16) {
			return nil, fmt.Errorf("dsar: source %s: EraseHash needs KeyColumn and a HashKey of at least 16 bytes", cfg.Name)
		}
	default:
		return nil, fmt.Errorf("dsar: unknown EraseStrategy %d", cfg.Strategy)
	}
	t, sc := quote(cfg.Table), quote(cfg.SubjectColumn)
	cols := make([]string, len(cfg.Columns))
	for i, c := range cfg.Columns {
		cols[i] = quote(c)
	}
	dialect, err := sqldialect.Detect(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("dsar: source %s: %w", cfg.Name, err)
	}
	s := &SQLSource{cfg: cfg, dialect: dialect}
	s.exportQ = s.rebind("SELECT " + strings.Join(cols, ", ") + " FROM " + t + " WHERE " + sc + " = ?")
	s.countQ = s.rebind("SELECT COUNT(*) FROM " + t + " WHERE " + sc + " = ?")
	s.deleteQ = s.rebind("DELETE FROM " + t + " WHERE " + sc + " = ?")
	var sets []string
	for _, c := range cfg.EraseColumns {
		sets = append(sets, quote(c)+" = NULL")
	}
	s.nullQ = s.rebind("UPDATE " + t + " SET " + strings.Join(sets, ", ") + " WHERE " + sc + " = ?")
	if cfg.Strategy == EraseHash {
		var ecols, hsets []string
		for _, c := range cfg.EraseColumns {
			ecols = append(ecols, quote(c))
			hsets = append(hsets, quote(c)+" = ?")
		}
		s.keyQ = s.rebind("SELECT " + quote(cfg.KeyColumn) + ", " + strings.Join(ecols, ", ") + " FROM " + t + " WHERE " + sc + " = ?")
		s.hashQ = s.rebind("UPDATE " + t + " SET " + strings.Join(hsets, ", ") + " WHERE " + quote(cfg.KeyColumn) + " = ?")
	}
	return s, nil
}

func (s *SQLSource) rebind(q string) string { return s.dialect.Rebind(q) }

// Name implements Source.
func (s *SQLSource) Name() string { return s.cfg.Name }

// DB implements TxSource.
func (s *SQLSource) DB() *sql.DB { return s.cfg.DB }

// Count implements Counter.
func (s *SQLSource) Count(ctx context.Context, subject string) (int, error) {
	var n int
	err := s.cfg.DB.QueryRowContext(ctx, s.countQ, subject).Scan(&n)
	return n, err
}

// Export implements Source, one row at a time.
func (s *SQLSource) Export(ctx context.Context, subject string, emit func(Record) error) error {
	rows, err := s.cfg.DB.QueryContext(ctx, s.exportQ, subject)
	if err != nil {
		return fmt.Errorf("dsar: export %s: %w", s.cfg.Name, err)
	}
	defer rows.Close()
	vals := make([]any, len(s.cfg.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("dsar: export %s: %w", s.cfg.Name, err)
		}
		rec := make(Record, len(vals))
		for i, c := range s.cfg.Columns {
			rec[c] = jsonValue(vals[i])
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonValue makes database values readable in JSON: text stays text,
// binary is base64, times are RFC 3339.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return map[string]string{"base64": base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// Erase implements Source in its own transaction.
func (s *SQLSource) Erase(ctx context.Context, subject string) (int64, error) {
	tx, err := s.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	n, err := s.EraseTx(ctx, tx, subject)
	if err != nil {
		_ = tx.Rollback()
		return 0, err
	}
	return n, tx.Commit()
}

// EraseTx implements TxSource.
func (s *SQLSource) EraseTx(ctx context.Context, tx *sql.Tx, subject string) (int64, error) {
	switch s.cfg.Strategy {
	case EraseDelete:
		return affected(tx.ExecContext(ctx, s.deleteQ, subject))
	case EraseNull:
		return affected(tx.ExecContext(ctx, s.nullQ, subject))
	}
	// EraseHash: read the keys and values, then rewrite each row.
	rows, err := tx.QueryContext(ctx, s.keyQ, subject)
	if err != nil {
		return 0, err
	}
	type row struct {
		key  any
		vals []any
	}
	var todo []row
	for rows.Next() {
		r := row{vals: make([]any, len(s.cfg.EraseColumns))}
		ptrs := []any{&r.key}
		for i := range r.vals {
			ptrs = append(ptrs, &r.vals[i])
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range todo {
		args := make([]any, 0, len(r.vals)+1)
		for _, v := range r.vals {
			args = append(args, s.hash(v))
		}
		if _, err := tx.ExecContext(ctx, s.hashQ, append(args, r.key)...); err != nil {
			return 0, err
		}
	}
	return int64(len(todo)), nil
}

func (s *SQLSource) hash(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		return pseudonym(s.cfg.HashKey, v)
	default:
		return pseudonym(s.cfg.HashKey, []byte(fmt.Sprint(v)))
	}
}

// Pseudonym is the value EraseHash writes in place of value under key:
// "hmac:" and the hex HMAC-SHA256. A component that must re-key rows
// itself (to keep foreign keys intact) uses it to write the same
// pseudonym the other sources write.
func Pseudonym(key []byte, value string) string { return pseudonym(key, []byte(value)) }

// IsPseudonym reports whether s has the form Pseudonym gives: "hmac:" and
// 64 lowercase hex digits. Views can tell an erased subject's kept rows
// from a live subject's by it.
func IsPseudonym(s string) bool {
	h, ok := strings.CutPrefix(s, "hmac:")
	if !ok || len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func pseudonym(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return "hmac:" + hex.EncodeToString(m.Sum(nil))
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
