package alert

import (
	"container/list"
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
	// MaxKeys bounds the keys remembered; past it, the key sent longest
	// ago is forgotten. Default DefaultMaxDedupKeys.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Dedup sends the same alert once per RepeatInterval and counts the
// repeats it held back; the next alert sent for that key carries a
// "Repeated" field with the count. It is exact under concurrency: of N
// identical alerts notified at once, one is delivered and N-1 counted. A
// failed delivery is not remembered, so the next occurrence is tried
// again.
//
// Memory is bounded by MaxKeys and each Notify is O(1): keys are kept in
// the order they were last sent, and when a new key arrives with MaxKeys
// held, the key sent longest ago is forgotten (its next occurrence is then
// delivered even inside its interval).
type Dedup struct {
	cfg DedupConfig

	mu    sync.Mutex
	seen  map[string]*list.Element // of *dedupState
	order *list.List               // front: sent most recently
}

type dedupState struct {
	key        string
	lastSent   time.Time
	suppressed int
	sending    bool // a delivery for this key is in flight
}

var _ Notifier = (*Dedup)(nil)

// NewDedup validates cfg.
func NewDedup(cfg DedupConfig) (*Dedup, error) {
	if cfg.Next == nil {
		return nil, errors.New("alert: DedupConfig.Next is required")
	}
	if cfg.RepeatInterval < 0 || cfg.MaxKeys < 0 {
		return nil, errors.New("alert: DedupConfig.RepeatInterval and MaxKeys must not be negative")
	}
	if cfg.RepeatInterval == 0 {
		cfg.RepeatInterval = DefaultRepeatInterval
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxDedupKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dedup{cfg: cfg, seen: make(map[string]*list.Element), order: list.New()}, nil
}

// Notify implements Notifier; a held-back repeat returns nil.
func (d *Dedup) Notify(ctx context.Context, a Alert) error {
	key := a.DedupKey()
	now := d.cfg.Now()
	d.mu.Lock()
	el, ok := d.seen[key]
	var st *dedupState
	if ok {
		st = el.Value.(*dedupState)
		if st.sending || now.Sub(st.lastSent) < d.cfg.RepeatInterval {
			st.suppressed++
			d.mu.Unlock()
			return nil
		}
	} else {
		if d.order.Len() >= d.cfg.MaxKeys {
			oldest := d.order.Back()
			d.order.Remove(oldest)
			delete(d.seen, oldest.Value.(*dedupState).key)
		}
		st = &dedupState{key: key}
		el = d.order.PushFront(st)
		d.seen[key] = el
	}
	// Reserve the key: concurrent repeats are counted, not sent.
	prev := *st
	st.sending = true
	repeats := st.suppressed
	d.mu.Unlock()

	if repeats > 0 {
		a.Fields = append(append([]Field(nil), a.Fields...), Field{"Repeated", strconv.Itoa(repeats) + " more times in the last " + d.cfg.RepeatInterval.String()})
	}
	err := d.cfg.Next.Notify(ctx, a)

	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// Not remembered: the next occurrence is tried again, and the
		// repeats counted meanwhile are kept for it.
		held := st.suppressed - repeats
		*st = prev
		st.suppressed += held
		if !ok && st.lastSent.IsZero() {
			d.order.Remove(el)
			delete(d.seen, key)
		}
		return err
	}
	st.sending, st.lastSent, st.suppressed = false, now, st.suppressed-repeats
	d.order.MoveToFront(el)
	return nil
}

// Suppressed reports how many repeats of key are being held back.
func (d *Dedup) Suppressed(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.seen[key]; ok {
		return el.Value.(*dedupState).suppressed
	}
	return 0
}

// Len is the number of keys remembered.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
