package dsar

import (
	"context"
	"fmt"
	"time"
)

// Kind is the right a request exercises.
type Kind string

// Request kinds.
const (
	KindAccess  Kind = "access"  // Art. 15 / 20
	KindErasure Kind = "erasure" // Art. 17
)

// Status is a request's state.
type Status string

// Statuses.
const (
	StatusReceived  Status = "received"
	StatusCompleted Status = "completed"
	StatusRejected  Status = "rejected"
)

// Request is one tracked data-subject request. Art. 12(3): answer within
// one month of receipt, extendable by two further months with a reason.
type Request struct {
	ID          string
	Kind        Kind
	SubjectRef  string
	ReceivedAt  time.Time
	DueAt       time.Time
	Status      Status
	CompletedAt time.Time
	Note        string
}

// Overdue reports whether r is still open after its deadline at now.
func (r Request) Overdue(now time.Time) bool {
	return r.Status == StatusReceived && now.After(r.DueAt)
}

// OpenRequest records a request received now; it is due one month later.
func (s *Service) OpenRequest(ctx context.Context, kind Kind, subject string) (Request, error) {
	if kind != KindAccess && kind != KindErasure {
		return Request{}, fmt.Errorf("dsar: unknown request kind %q", kind)
	}
	now := s.cfg.Now().UTC()
	r := Request{ID: newID(), Kind: kind, SubjectRef: s.SubjectRef(subject), ReceivedAt: now, DueAt: now.AddDate(0, 1, 0), Status: StatusReceived}
	_, err := s.cfg.DB.ExecContext(ctx, s.q(`INSERT INTO levqor_dsar_requests (id, kind, subject_ref, received_at, due_at, status) VALUES (?, ?, ?, ?, ?, ?)`),
		r.ID, string(r.Kind), r.SubjectRef, r.ReceivedAt.Format(time.RFC3339Nano), r.DueAt.Format(time.RFC3339Nano), string(r.Status))
	if err != nil {
		return Request{}, fmt.Errorf("dsar: open request: %w", err)
	}
	return r, nil
}

// CompleteRequest closes a request as completed or rejected, with a note.
func (s *Service) CompleteRequest(ctx context.Context, id string, status Status, note string) error {
	if status != StatusCompleted && status != StatusRejected {
		return fmt.Errorf("dsar: a request is closed as %q or %q", StatusCompleted, StatusRejected)
	}
	res, err := s.cfg.DB.ExecContext(ctx, s.q(`UPDATE levqor_dsar_requests SET status = ?, completed_at = ?, note = ? WHERE id = ? AND status = ?`),
		string(status), s.cfg.Now().UTC().Format(time.RFC3339Nano), note, id, string(StatusReceived))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s (or already closed)", ErrNoRequest, id)
	}
	return nil
}

// ExtendRequest moves an open request's deadline by two months (the most
// Art. 12(3) allows, once), recording the reason to tell the subject.
func (s *Service) ExtendRequest(ctx context.Context, id, reason string) (Request, error) {
	r, err := s.request(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Status != StatusReceived || !r.DueAt.Equal(r.ReceivedAt.AddDate(0, 1, 0)) {
		return Request{}, fmt.Errorf("dsar: request %s is closed or already extended", id)
	}
	r.DueAt = r.ReceivedAt.AddDate(0, 3, 0)
	r.Note = "extended: " + reason
	_, err = s.cfg.DB.ExecContext(ctx, s.q(`UPDATE levqor_dsar_requests SET due_at = ?, note = ? WHERE id = ?`), r.DueAt.Format(time.RFC3339Nano), r.Note, id)
	return r, err
}

// Requests lists tracked requests, oldest first; with overdueOnly, only
// open requests past their deadline.
func (s *Service) Requests(ctx context.Context, overdueOnly bool) ([]Request, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT id, kind, subject_ref, received_at, due_at, status, completed_at, note FROM levqor_dsar_requests ORDER BY received_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.cfg.Now()
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		if !overdueOnly || r.Overdue(now) {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

func (s *Service) request(ctx context.Context, id string) (Request, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, s.q(`SELECT id, kind, subject_ref, received_at, due_at, status, completed_at, note FROM levqor_dsar_requests WHERE id = ?`), id)
	if err != nil {
		return Request{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		return Request{}, fmt.Errorf("%w: %s", ErrNoRequest, id)
	}
	return scanRequest(rows)
}

type scanner interface{ Scan(...any) error }

func scanRequest(sc scanner) (Request, error) {
	var r Request
	var kind, status, recv, due, done string
	if err := sc.Scan(&r.ID, &kind, &r.SubjectRef, &recv, &due, &status, &done, &r.Note); err != nil {
		return Request{}, err
	}
	r.Kind, r.Status = Kind(kind), Status(status)
	r.ReceivedAt, _ = time.Parse(time.RFC3339Nano, recv)
	r.DueAt, _ = time.Parse(time.RFC3339Nano, due)
	if done != "" {
		r.CompletedAt, _ = time.Parse(time.RFC3339Nano, done)
	}
	return r, nil
}
