package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultHistorySize is how many alerts History keeps.
const DefaultHistorySize = 100

// MaxHistorySize bounds HistoryConfig.Size (and Config.HistorySize): the
// ring is allocated up front.
const MaxHistorySize = 1 << 20

// Record is one alert and what became of it.
type Record struct {
	Alert Alert
	At    time.Time
	// Err is the delivery error text, "" when delivered.
	Err string
}

// Delivered reports whether the alert was delivered.
func (r Record) Delivered() bool { return r.Err == "" }

// HistoryConfig configures a History.
type HistoryConfig struct {
	// Next delivers the alerts. Required.
	Next Notifier
	// Size is how many records are kept, at most MaxHistorySize. Default
	// DefaultHistorySize (100).
	Size int
	// Now stamps records. Default time.Now.
	Now func() time.Time
}

// History delivers through Next and keeps the last Size alerts with their
// outcome in a ring buffer.
type History struct {
	next Notifier
	now  func() time.Time

	mu    sync.Mutex
	ring  []Record
	start int // index of the oldest record
	n     int
}

var _ Notifier = (*History)(nil)

// NewHistory validates cfg.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if cfg.Next == nil {
		return nil, errors.New("alert: HistoryConfig.Next is required")
	}
	if cfg.Size < 0 {
		return nil, errors.New("alert: HistoryConfig.Size must not be negative")
	}
	if cfg.Size > MaxHistorySize {
		return nil, fmt.Errorf("alert: HistoryConfig.Size %d exceeds MaxHistorySize (%d)", cfg.Size, MaxHistorySize)
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultHistorySize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &History{next: cfg.Next, now: cfg.Now, ring: make([]Record, cfg.Size)}, nil
}

// Notify delivers a through Next, records the outcome and returns Next's error.
func (h *History) Notify(ctx context.Context, a Alert) error {
	err := h.next.Notify(ctx, a)
	rec := Record{Alert: a, At: h.now()}
	if err != nil {
		rec.Err = err.Error()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n < len(h.ring) {
		h.ring[(h.start+h.n)%len(h.ring)] = rec
		h.n++
	} else {
		h.ring[h.start] = rec
		h.start = (h.start + 1) % len(h.ring)
	}
	return err
}

// Query selects records; zero fields select everything.
type Query struct {
	MinSeverity Severity  // at least this severity
	Since       time.Time // recorded at or after
	FailedOnly  bool      // only failed deliveries
	Limit       int       // at most this many (0: all)
}

// Records returns the matching records, newest first.
func (h *History) Records(q Query) []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Record
	for i := h.n - 1; i >= 0; i-- {
		r := h.ring[(h.start+i)%len(h.ring)]
		if r.Alert.Severity < q.MinSeverity || r.At.Before(q.Since) || (q.FailedOnly && r.Delivered()) {
			continue
		}
		out = append(out, r)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}
