package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of CacheConfig.
const (
	DefaultCacheEntries = 100_000
	DefaultCacheMaxAge  = time.Minute
)

// Feed carries revocations between the processes sharing a Store, so each
// can keep a Cache: Publish announces that a family changed (a token of it
// or the family itself was revoked), and every subscriber hears it.
// RedisFeed implements it with Redis pub/sub.
type Feed interface {
	// Publish tells every subscriber that family changed.
	Publish(ctx context.Context, family string) error
	// Subscribe delivers publications to ev until ctx ends, reconnecting
	// as needed: ev.Up once subscribed (every later publication will be
	// delivered), ev.Down when publications may be missed.
	Subscribe(ctx context.Context, ev FeedEvents)
}

// FeedEvents are the callbacks of Feed.Subscribe.
type FeedEvents struct {
	Changed func(family string)
	Up      func()
	Down    func(err error)
}

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Store is the source of truth; every write goes to it first.
	// Required; the Cache never closes it.
	Store Store
	// Feed carries revocations from and to the other processes using
	// Store. Nil means this process makes every change to Store (one
	// process per store, e.g. an embedded SQLite file): local writes keep
	// the cache current. With a Feed, the cache answers only while
	// subscribed; otherwise every check goes to the Store.
	Feed Feed
	// MaxEntries bounds the tokens remembered as not revoked. Default
	// DefaultCacheEntries (100,000, under 100 bytes each).
	MaxEntries int
	// MaxAge is how long a "not revoked" answer is reused at most, a
	// backstop behind the invalidations. Default DefaultCacheMaxAge (1m).
	MaxAge time.Duration
	// Logger reports feed outages. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Cache is a Store that remembers which tokens its Store said were not
// revoked, so Verify's revocation check costs no round trip for a token
// seen recently. Only "not revoked" answers are kept (a revoked token
// stays revoked); each is forgotten when its family changes: RevokeToken,
// RevokeFamily, and reuse detected by Rotate through this Cache, or a
// change announced on the Feed by another process. Flush forgets
// everything (e.g. when the Store lost its data). Safe for concurrent use;
// Close stops the feed subscription.
type Cache struct {
	store  Store
	feed   Feed
	max    int
	maxAge time.Duration
	log    *slog.Logger
	now    func() time.Time
	live   atomic.Bool // with a feed: subscribed

	mu   sync.RWMutex
	fams map[string]map[string]time.Time // family -> jti -> checked at
	n    int                             // jtis remembered
	gen  uint64                          // bumped by every invalidation

	cancel context.CancelFunc
	done   chan struct{}
}

var _ Store = (*Cache)(nil)

// NewCache validates cfg and, with a Feed, starts the subscription.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("tokens: CacheConfig.Store is required")
	}
	if cfg.MaxEntries < 0 || cfg.MaxAge < 0 {
		return nil, fmt.Errorf("tokens: CacheConfig.MaxEntries and MaxAge must not be negative")
	}
	c := &Cache{store: cfg.Store, feed: cfg.Feed, max: cfg.MaxEntries, maxAge: cfg.MaxAge, log: cfg.Logger, now: cfg.Now,
		fams: map[string]map[string]time.Time{}, done: make(chan struct{})}
	if c.max == 0 {
		c.max = DefaultCacheEntries
	}
	if c.maxAge == 0 {
		c.maxAge = DefaultCacheMaxAge
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if c.feed == nil {
		close(c.done)
		return c, nil
	}
	go func() {
		defer close(c.done)
		c.feed.Subscribe(ctx, FeedEvents{
			Changed: c.invalidate,
			Up:      func() { c.Flush(); c.live.Store(true) },
			Down: func(err error) {
				if c.live.Swap(false) {
					c.log.Warn("tokens: revocation feed down; checking the store on every request", "err", err)
				}
				c.Flush()
			},
		})
	}()
	return c, nil
}

// Live reports whether the cache answers: always without a Feed, while
// subscribed with one.
func (c *Cache) Live() bool { return c.feed == nil || c.live.Load() }

// Revoked implements Store: from memory for a token found not revoked
// within MaxAge, else from the Store.
func (c *Cache) Revoked(ctx context.Context, family, jti string) (bool, error) {
	if !c.Live() {
		return c.store.Revoked(ctx, family, jti)
	}
	now := c.now()
	c.mu.RLock()
	at, ok := c.fams[family][jti]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Sub(at) < c.maxAge {
		return false, nil
	}
	revoked, err := c.store.Revoked(ctx, family, jti)
	if err != nil || revoked {
		return revoked, err
	}
	c.mu.Lock()
	// Remember only if nothing changed meanwhile: an invalidation that
	// raced with the Store read may be about this very token.
	if c.gen == gen && c.Live() {
		c.remember(family, jti, now)
	}
	c.mu.Unlock()
	return false, nil
}

func (c *Cache) remember(family, jti string, now time.Time) {
	for c.n >= c.max { // evict an arbitrary family
		for f, jtis := range c.fams {
			c.n -= len(jtis)
			delete(c.fams, f)
			break
		}
	}
	jtis := c.fams[family]
	if jtis == nil {
		jtis = map[string]time.Time{}
		c.fams[family] = jtis
	}
	if _, ok := jtis[jti]; !ok {
		c.n++
	}
	jtis[jti] = now
}

// invalidate forgets what is known about family.
func (c *Cache) invalidate(family string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.n -= len(c.fams[family])
	delete(c.fams, family)
}

// Flush forgets every answer, e.g. after the Store lost its data.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.fams = map[string]map[string]time.Time{}
	c.n = 0
}

// Len reports how many tokens the cache remembers as not revoked.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.n
}

// changed invalidates family here and announces it on the feed. A
// revocation that cannot be announced is an error: other processes would
// go on accepting the token.
func (c *Cache) changed(ctx context.Context, family string) error {
	c.invalidate(family)
	if c.feed == nil {
		return nil
	}
	if err := c.feed.Publish(ctx, family); err != nil {
		return fmt.Errorf("tokens: revocation stored but not announced to other processes: %w", err)
	}
	return nil
}

// CreateFamily implements Store.
func (c *Cache) CreateFamily(ctx context.Context, family, subject, jti string, expiresAt time.Time) error {
	return c.store.CreateFamily(ctx, family, subject, jti, expiresAt)
}

// Rotate implements Store; detected reuse revoked the family.
func (c *Cache) Rotate(ctx context.Context, r Rotation) (string, error) {
	jti, err := c.store.Rotate(ctx, r)
	if errors.Is(err, ErrReused) {
		if perr := c.changed(ctx, r.Family); perr != nil {
			return "", perr
		}
	}
	return jti, err
}

// RevokeToken implements Store.
func (c *Cache) RevokeToken(ctx context.Context, family, jti string, expiresAt time.Time) error {
	if err := c.store.RevokeToken(ctx, family, jti, expiresAt); err != nil {
		return err
	}
	return c.changed(ctx, family)
}

// RevokeFamily implements Store.
func (c *Cache) RevokeFamily(ctx context.Context, family string, expiresAt time.Time) error {
	if err := c.store.RevokeFamily(ctx, family, expiresAt); err != nil {
		return err
	}
	return c.changed(ctx, family)
}

// CleanupExpired implements Store.
func (c *Cache) CleanupExpired(ctx context.Context, now time.Time) (int, error) {
	return c.store.CleanupExpired(ctx, now)
}

// Close stops the feed subscription and waits for it; the Store stays
// open. It is safe to call more than once.
func (c *Cache) Close() error {
	c.cancel()
	<-c.done
	return nil
}
