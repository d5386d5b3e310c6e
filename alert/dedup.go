package alert

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
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
	// Claimer shares the de-duplication with other processes that send
	// the same alerts (replicas of one service): an alert is delivered
	// only by the process that claims its key. Default nil: this process
	// de-duplicates alone.
	Claimer Claimer
	// Logger receives the Claimer's failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// A Claimer lets several processes that raise the same alerts deliver
// each once per repeat interval between them: the first to claim an
// alert's key delivers it, the others hold it back until that claim ends.
// Claims live outside the processes (Redis, a database table).
type Claimer interface {
	// Claim claims key for ttl. It reports whether this process now holds
	// the claim; when another holds it, heldUntil is when that claim ends.
	Claim(ctx context.Context, key string, ttl time.Duration) (claimed bool, heldUntil time.Time, err error)
	// Release ends this process's claim of key, after a delivery failed,
	// so that the next occurrence is tried again by whoever sees it.
	Release(ctx context.Context, key string) error
}

// Dedup sends the same alert once per RepeatInterval and counts the
// repeats it held back; the next alert sent for that key carries a
// "Repeated" field with the count. It is exact under concurrency: of N
// identical alerts notified at once, one is delivered and N-1 counted. A
// failed delivery is not remembered, so the next occurrence is tried
// again.
//
// With a Claimer, processes sharing it deliver an alert once between them:
// one that finds the key claimed elsewhere counts the alert as a repeat and
// holds the key back until that claim ends. When the Claimer fails, the
// alert is delivered (a repeat beats a missed alert) and the failure
// logged.
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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

	claimed := false
	if d.cfg.Claimer != nil {
		ok, until, err := d.cfg.Claimer.Claim(ctx, key, d.cfg.RepeatInterval)
		switch {
		case err != nil:
			d.cfg.Logger.Warn("alert: claiming an alert failed; delivering it anyway", "key", key, "err", err)
		case ok:
			claimed = true
		default:
			// Delivered elsewhere: a repeat, held back until that claim ends.
			d.mu.Lock()
			st.sending, st.lastSent = false, until.Add(-d.cfg.RepeatInterval)
			st.suppressed++
			d.mu.Unlock()
			return nil
		}
	}

	if repeats > 0 {
		a.Fields = append(append([]Field(nil), a.Fields...), Field{"Repeated", strconv.Itoa(repeats) + " more times in the last " + d.cfg.RepeatInterval.String()})
	}
	err := d.cfg.Next.Notify(ctx, a)
	if err != nil && claimed {
		if rerr := d.cfg.Claimer.Release(ctx, key); rerr != nil {
			d.cfg.Logger.Warn("alert: releasing the claim of an undelivered alert failed", "key", key, "err", rerr)
		}
	}

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
