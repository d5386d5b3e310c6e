package alert

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Defaults for DedupConfig.
const (
	DefaultRepeatInterval = 4 * time.Hour // as Alertmanager's repeat_interval
	DefaultMaxDedupKeys   = 10_000
)

// DedupConfig configures a Dedup.
type DedupConfig struct {
	// Next delivers the alerts. Required.
	Next Notifier
	// RepeatInterval: the same alert (same DedupKey) is sent at most once
	// per interval. Default DefaultRepeatInterval (4h).
	RepeatInterval time.Duration
	// MaxKeys bounds the keys remembered; past it, keys older than the
	// interval are forgotten. Default DefaultMaxDedupKeys.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Dedup sends the same alert once per RepeatInterval and counts the
// repeats it held back; the next alert sent for that key carries a
// "Repeated" field with the count. A failed delivery is not remembered, so
// the next occurrence is tried again.
type Dedup struct {
	cfg DedupConfig

	mu   sync.Mutex
	seen map[string]*dedupState
}

type dedupState struct {
	lastSent   time.Time
	suppressed int
}

var _ Notifier = (*Dedup)(nil)

// NewDedup validates cfg.
func NewDedup(cfg DedupConfig) (*Dedup, error) {
	if cfg.Next == nil {
		return nil, errors.New("alert: DedupConfig.Next is required")
	}
	if cfg.RepeatInterval <= 0 {
		cfg.RepeatInterval = DefaultRepeatInterval
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxDedupKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dedup{cfg: cfg, seen: make(map[string]*dedupState)}, nil
}

// Notify implements Notifier; a held-back repeat returns nil.
func (d *Dedup) Notify(ctx context.Context, a Alert) error {
	key := a.DedupKey()
	now := d.cfg.Now()
	d.mu.Lock()
	st, ok := d.seen[key]
	if ok && now.Sub(st.lastSent) < d.cfg.RepeatInterval {
		st.suppressed++
		d.mu.Unlock()
		return nil
	}
	repeats := 0
	if ok {
		repeats = st.suppressed
	}
	d.mu.Unlock()

	if repeats > 0 {
		a.Fields = append(append([]Field(nil), a.Fields...), Field{"Repeated", strconv.Itoa(repeats) + " more times in the last " + d.cfg.RepeatInterval.String()})
	}
	if err := d.cfg.Next.Notify(ctx, a); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.seen) >= d.cfg.MaxKeys {
		for k, s := range d.seen {
			if now.Sub(s.lastSent) >= d.cfg.RepeatInterval {
				delete(d.seen, k)
			}
		}
	}
	d.seen[key] = &dedupState{lastSent: now}
	return nil
}

// Suppressed reports how many repeats of key are being held back.
func (d *Dedup) Suppressed(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.seen[key]; ok {
		return st.suppressed
	}
	return 0
}
