package dsar

import (
	"github.com/levqor/levqor/internal/sqldialect"

	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Controller is the information Art. 15(1) GDPR requires alongside the
// data itself; it is copied into every export.
type Controller struct {
	Name                 string   `json:"name"`
	Contact              string   `json:"contact"`
	Purposes             []string `json:"purposes"`
	Categories           []string `json:"categories_of_personal_data"`
	Recipients           []string `json:"recipients"`
	Retention            string   `json:"retention"`
	SourceOfData         string   `json:"source_of_data"`
	AutomatedDecisions   string   `json:"automated_decision_making"`
	Rights               []string `json:"rights"`
	SupervisoryAuthority string   `json:"supervisory_authority,omitempty"`
}

// DefaultRights returns the data subject's rights (Art. 15(1)(e)-(f)), a
// new slice each call.
func DefaultRights() []string {
	return []string{
		"access (Art. 15)", "rectification (Art. 16)", "erasure (Art. 17)",
		"restriction of processing (Art. 18)", "data portability (Art. 20)",
		"objection (Art. 21)", "lodging a complaint with a supervisory authority (Art. 77)",
	}
}

// Config configures a Service.
type Config struct {
	// Sources hold the personal data, in erasure order (children before
	// parents when foreign keys link them). Required.
	Sources []Source
	// DB stores the audit trail and the request log (tables
	// levqor_dsar_audit and levqor_dsar_requests, created if missing).
	// Required; SQLite or PostgreSQL, told apart by the driver.
	DB *sql.DB
	// SubjectKey keys the HMAC that identifies subjects in the audit trail
	// and request log, so neither re-stores an erased identity. At least
	// 16 bytes; keep it secret and stable.
	SubjectKey []byte
	// Controller is the Art. 15 information put in every export.
	Controller Controller
	// Logger receives exports and erasures (by subject reference). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Errors.
var (
	ErrNoRequest = errors.New("dsar: no such request")
)

// Service answers data-subject access and erasure requests over its Sources.
type Service struct {
	cfg Config
	q   func(string) string
}

// New validates cfg and creates the audit and request tables.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("dsar: Config.Sources is empty")
	}
	if cfg.DB == nil {
		return nil, errors.New("dsar: Config.DB is required")
	}
	if len(cfg.SubjectKey) < 16 {
		return nil, errors.New("dsar: Config.SubjectKey must be at least 16 bytes")
	}
	seen := map[string]bool{}
	for _, s := range cfg.Sources {
		if s == nil || s.Name() == "" || seen[s.Name()] {
			return nil, fmt.Errorf("dsar: sources need distinct, non-empty names (%v)", s)
		}
		seen[s.Name()] = true
	}
	if cfg.Controller.Rights == nil {
		cfg.Controller.Rights = DefaultRights()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dialect, err := sqldialect.Detect(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("dsar: %w", err)
	}
	s := &Service{cfg: cfg, q: dialect.Rebind}
	if err := dialect.CreateSchema(ctx, cfg.DB, "dsar",
		`CREATE TABLE IF NOT EXISTS levqor_dsar_audit (
			id TEXT PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL,
			subject_ref TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS levqor_dsar_audit_subject ON levqor_dsar_audit (subject_ref)`,
		`CREATE TABLE IF NOT EXISTS levqor_dsar_requests (
			id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_ref TEXT NOT NULL,
			received_at TEXT NOT NULL, due_at TEXT NOT NULL, status TEXT NOT NULL,
			completed_at TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '')`,
	); err != nil {
		return nil, fmt.Errorf("dsar: create tables: %w", err)
	}
	return s, nil
}

// SubjectRef is the keyed hash that stands for subject in the audit trail
// and request log.
func (s *Service) SubjectRef(subject string) string {
	m := hmac.New(sha256.New, s.cfg.SubjectKey)
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil))
}

// Summary is the number of records per source.
type Summary map[string]int

// Summary counts subject's records in every source.
func (s *Service) Summary(ctx context.Context, subject string) (Summary, error) {
	out := Summary{}
	for _, src := range s.cfg.Sources {
		if c, ok := src.(Counter); ok {
			n, err := c.Count(ctx, subject)
			if err != nil {
				return nil, fmt.Errorf("dsar: count %s: %w", src.Name(), err)
			}
			out[src.Name()] = n
			continue
		}
		n := 0
		if err := src.Export(ctx, subject, func(Record) error { n++; return nil }); err != nil {
			return nil, err
		}
		out[src.Name()] = n
	}
	return out, nil
}

// Export writes subject's data as one JSON document (Art. 15 and Art. 20):
// {"subject", "generated_at", "controller", "data": {source: [records]},
// "summary": {source: count}}. Records are streamed to w one at a time, so
// a large source is never held in memory. actor says who asked (recorded
// in the audit trail).
func (s *Service) Export(ctx context.Context, w io.Writer, subject, actor string) (Summary, error) {
	now := s.cfg.Now().UTC()
	enc := json.NewEncoder(w)
	write := func(str string) error { _, err := io.WriteString(w, str); return err }
	head, err := json.Marshal(struct {
		Subject     string     `json:"subject"`
		GeneratedAt string     `json:"generated_at"`
		Controller  Controller `json:"controller"`
	}{subject, now.Format(time.RFC3339), s.cfg.Controller})
	if err != nil {
		return nil, err
	}
	if err := write(string(head[:len(head)-1]) + `,"data":{`); err != nil {
		return nil, err
	}
	sum := Summary{}
	for i, src := range s.cfg.Sources {
		name, _ := json.Marshal(src.Name())
		sep := ","
		if i == 0 {
			sep = ""
		}
		if err := write(sep + string(name) + ":["); err != nil {
			return nil, err
		}
		n := 0
		err := src.Export(ctx, subject, func(r Record) error {
			if n > 0 {
				if err := write(","); err != nil {
					return err
				}
			}
			n++
			return enc.Encode(r)
		})
		if err != nil {
			return nil, fmt.Errorf("dsar: export %s: %w", src.Name(), err)
		}
		sum[src.Name()] = n
		if err := write("]"); err != nil {
			return nil, err
		}
	}
	tail, _ := json.Marshal(sum)
	if err := write(`},"summary":` + string(tail) + "}\n"); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, "export", subject, actor, sum); err != nil {
		return sum, err
	}
	return sum, nil
}

// ErasureReport says what Erase changed, per source.
type ErasureReport struct {
	Rows map[string]int64 `json:"rows"`
	At   time.Time        `json:"at"`
}

// Erase erases subject from every source (Art. 17): SQL sources sharing a
// database in one transaction (all or nothing), others one by one, in the
// configured order. It is idempotent: erasing again changes 0 rows. The
// audit trail records who, when, which sources and how many rows, under
// the subject's keyed reference, never the subject itself.
func (s *Service) Erase(ctx context.Context, subject, actor string) (ErasureReport, error) {
	rep := ErasureReport{Rows: map[string]int64{}, At: s.cfg.Now().UTC()}
	// Group TxSources by database, keeping first-appearance order.
	var groups [][]TxSource
	byDB := map[*sql.DB]int{}
	var plain []Source
	for _, src := range s.cfg.Sources {
		if ts, ok := src.(TxSource); ok {
			i, seen := byDB[ts.DB()]
			if !seen {
				i = len(groups)
				byDB[ts.DB()] = i
				groups = append(groups, nil)
			}
			groups[i] = append(groups[i], ts)
			continue
		}
		plain = append(plain, src)
	}
	for _, g := range groups {
		tx, err := g[0].DB().BeginTx(ctx, nil)
		if err != nil {
			return rep, fmt.Errorf("dsar: erase: %w", err)
		}
		for _, src := range g {
			n, err := src.EraseTx(ctx, tx, subject)
			if err != nil {
				_ = tx.Rollback()
				return rep, fmt.Errorf("dsar: erase %s (rolled back): %w", src.Name(), err)
			}
			rep.Rows[src.Name()] = n
		}
		if err := tx.Commit(); err != nil {
			return rep, fmt.Errorf("dsar: erase: commit: %w", err)
		}
	}
	for _, src := range plain {
		n, err := src.Erase(ctx, subject)
		if err != nil {
			return rep, fmt.Errorf("dsar: erase %s: %w", src.Name(), err)
		}
		rep.Rows[src.Name()] = n
	}
	if err := s.audit(ctx, "erase", subject, actor, rep.Rows); err != nil {
		return rep, err
	}
	return rep, nil
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	Action     string          `json:"action"`
	SubjectRef string          `json:"subject_ref"`
	Actor      string          `json:"actor"`
	Detail     json.RawMessage `json:"detail"`
}

func (s *Service) audit(ctx context.Context, action, subject, actor string, detail any) error {
	d, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	ref := s.SubjectRef(subject)
	_, err = s.cfg.DB.ExecContext(ctx, s.q(`INSERT INTO levqor_dsar_audit (id, at, action, subject_ref, actor, detail) VALUES (?, ?, ?, ?, ?, ?)`),
		newID(), s.cfg.Now().UTC().Format(time.RFC3339Nano), action, ref, actor, string(d))
	if err != nil {
		return fmt.Errorf("dsar: write audit entry: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "dsar: "+action, "subject_ref", ref[:16], "actor", actor, "detail", string(d))
	return nil
}

// AuditTrail returns the audit entries for subject, oldest first.
func (s *Service) AuditTrail(ctx context.Context, subject string) ([]AuditEntry, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, s.q(`SELECT id, at, action, subject_ref, actor, detail FROM levqor_dsar_audit WHERE subject_ref = ? ORDER BY at`), s.SubjectRef(subject))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at, detail string
		if err := rows.Scan(&e.ID, &at, &e.Action, &e.SubjectRef, &e.Actor, &detail); err != nil {
			return nil, err
		}
		e.At, _ = time.Parse(time.RFC3339Nano, at)
		e.Detail = json.RawMessage(detail)
		out = append(out, e)
	}
	return out, rows.Err()
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
