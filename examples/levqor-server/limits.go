package main

import (
	"container/list"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/ratelimit"
)

// hashWait is how long a login or registration queues for a free password
// hashing slot before it gets 503 with Retry-After.
const hashWait = 2 * time.Second

// errBusy means every hashing slot stayed taken for hashWait.
var errBusy = errors.New("password hashing at capacity")

// hashGate bounds concurrent password hashes: each argon2id hash holds
// argonMemory (19 MiB) for its duration, so N slots cap that memory at
// N × 19 MiB however many logins arrive at once.
type hashGate struct{ slots chan struct{} }

func newHashGate(n int) *hashGate { return &hashGate{slots: make(chan struct{}, n)} }

// do runs fn in a slot, waiting at most hashWait for one.
func (g *hashGate) do(ctx context.Context, fn func()) error {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.slots }()
	fn()
	return nil
}

// Per-account login throttle (OWASP Authentication Cheat Sheet): at most
// loginFailures password checks for one email within loginWindow, failed
// or still running; further attempts get 429 until the window ends, and a
// successful login resets it. It applies the same way to emails with and
// without an account, so it reveals nothing about which exist.
const (
	loginFailures = 10
	loginWindow   = 15 * time.Minute
)

// loginGuard counts login attempts per account key (a hash of the email).
// An attempt is counted before its password is checked, not after it
// failed: otherwise every attempt sent at once passes the check before
// the first failure is recorded, and a burst from many addresses checks
// as many passwords as the hashing slots get through (143 against a limit
// of 10, measured with the real binary before this design).
type loginGuard interface {
	// Attempt counts one attempt and returns 0, or, when the key already
	// holds loginFailures attempts in its window, how long it stays locked
	// (the refused attempt is not counted).
	Attempt(ctx context.Context, key string) (time.Duration, error)
	// Release gives back an attempt whose password was never checked
	// (no hashing slot, the database failed).
	Release(ctx context.Context, key string) error
	// Succeeded resets the key.
	Succeeded(ctx context.Context, key string) error
}

// accountKey hashes a normalised email, so no address is kept in memory
// or Redis by the throttle.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte("levqor-login|" + email))
	return hex.EncodeToString(sum[:16])
}

// memoryGuard is the single-process loginGuard. It holds at most max
// keys: when full, a new key takes the place of the oldest window (every
// window lasts loginWindow, so the oldest started is the first to end,
// expired or not). Windows are kept in the order they started, so making
// room costs O(1): about 1 µs per new key at 100,000 keys, where a scan of
// every key took 2.7-4.1 ms under the lock every login takes
// (BenchmarkMemoryGuardFull).
type memoryGuard struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	keys  map[string]*list.Element // of *failWindow
	order *list.List               // oldest window first
}

type failWindow struct {
	key   string
	count int
	ends  time.Time
}

var (
	_ loginGuard = (*memoryGuard)(nil)
	_ loginGuard = redisGuard{}
	_ loginGuard = (*sqlGuard)(nil)
)

func newMemoryGuard(max int) *memoryGuard {
	return &memoryGuard{max: max, now: time.Now, keys: map[string]*list.Element{}, order: list.New()}
}

func (g *memoryGuard) Attempt(_ context.Context, key string) (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e, ok := g.keys[key]
	switch {
	case !ok:
		for len(g.keys) >= g.max {
			g.remove(g.order.Front())
		}
		e = g.order.PushBack(&failWindow{key: key, ends: now.Add(loginWindow)})
		g.keys[key] = e
	case !now.Before(e.Value.(*failWindow).ends):
		w := e.Value.(*failWindow)
		w.count, w.ends = 0, now.Add(loginWindow) // a new window, the newest
		g.order.MoveToBack(e)
	}
	w := e.Value.(*failWindow)
	if w.count >= loginFailures {
		return w.ends.Sub(now), nil
	}
	w.count++
	return 0, nil
}

func (g *memoryGuard) Release(_ context.Context, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.keys[key]; ok {
		if w := e.Value.(*failWindow); g.now().Before(w.ends) && w.count > 0 {
			w.count--
		}
	}
	return nil
}

func (g *memoryGuard) Succeeded(_ context.Context, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.keys[key]; ok {
		g.remove(e)
	}
	return nil
}

func (g *memoryGuard) remove(e *list.Element) {
	delete(g.keys, e.Value.(*failWindow).key)
	g.order.Remove(e)
}

// redisGuard shares the throttle between replicas: one counter key per
// account that expires with its window, counted and checked in one script
// so attempts on several replicas at once are counted exactly.
type redisGuard struct{ c redis.UniversalClient }

const loginGuardPrefix = "levqor:lf:"

// attemptScript: KEYS[1] the counter, ARGV[1] loginFailures, ARGV[2] the
// window in ms. Returns 0 (counted) or the lock's remaining ms.
var attemptScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return math.max(ttl, 1) -- 0 would read as "counted"
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript takes one attempt back, keeping the window's expiry, and
// never below zero (the window may have ended meanwhile).
var releaseScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
`)

func (g redisGuard) Attempt(ctx context.Context, key string) (time.Duration, error) {
	ms, err := attemptScript.Run(ctx, g.c, []string{loginGuardPrefix + key}, loginFailures, loginWindow.Milliseconds()).Int64()
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (g redisGuard) Release(ctx context.Context, key string) error {
	return releaseScript.Run(ctx, g.c, []string{loginGuardPrefix + key}).Err()
}

func (g redisGuard) Succeeded(ctx context.Context, key string) error {
	return g.c.Del(ctx, loginGuardPrefix+key).Err()
}

// sqlGuard shares the throttle between replicas that share PostgreSQL and
// no Redis: a row per account in login_throttle (migration 0008). An
// attempt is one upsert that counts only while the window holds fewer
// than loginFailures (or has ended), so attempts on several replicas at
// once are counted exactly (the row's lock orders them). Each replica's
// attempts delete the windows that ended at most once a minute, so the
// table holds about a window's worth of emails tried, as Redis would, not
// the hour until housekeeping.
type sqlGuard struct {
	db    *database
	now   func() time.Time
	swept atomic.Int64 // Unix ms of the last deletion of ended windows
}

// sqlGuardSweep is how often a replica's attempts delete ended windows.
const sqlGuardSweep = time.Minute

func (g *sqlGuard) Attempt(ctx context.Context, key string) (time.Duration, error) {
	now := g.now().UnixMilli()
	if last := g.swept.Load(); now-last >= sqlGuardSweep.Milliseconds() && g.swept.CompareAndSwap(last, now) {
		// Failing here fails no login: housekeeping deletes them too.
		_, _ = g.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE window_ends <= ?`, now)
	}
	ends := now + loginWindow.Milliseconds()
	var n int
	err := g.db.QueryRowContext(ctx, `INSERT INTO login_throttle (account_key, attempts, window_ends) VALUES (?, 1, ?)
		ON CONFLICT (account_key) DO UPDATE SET
			attempts = CASE WHEN login_throttle.window_ends <= ? THEN 1 ELSE login_throttle.attempts + 1 END,
			window_ends = CASE WHEN login_throttle.window_ends <= ? THEN ? ELSE login_throttle.window_ends END
		WHERE login_throttle.window_ends <= ? OR login_throttle.attempts < ?
		RETURNING attempts`, key, ends, now, now, ends, now, loginFailures).Scan(&n)
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err // counted, or failed
	}
	// Locked: the window holds loginFailures attempts.
	var until int64
	if err := g.db.QueryRowContext(ctx, `SELECT window_ends FROM login_throttle WHERE account_key = ?`, key).Scan(&until); err != nil {
		return 0, err
	}
	return time.Duration(max(until-now, 1)) * time.Millisecond, nil
}

func (g *sqlGuard) Release(ctx context.Context, key string) error {
	_, err := g.db.ExecContext(ctx, `UPDATE login_throttle SET attempts = attempts - 1
		WHERE account_key = ? AND attempts > 0 AND window_ends > ?`, key, g.now().UnixMilli())
	return err
}

func (g *sqlGuard) Succeeded(ctx context.Context, key string) error {
	_, err := g.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE account_key = ?`, key)
	return err
}

// connLimiter caps the connections a listener holds open. At the cap, it
// first closes the connection that has been idle (keep-alive) or silent
// (accepted, no request yet for longer than newGrace) the longest, so a
// client hoarding connections cannot lock others out. When every
// connection is busy, it closes the oldest connection of the client
// holding the most, if that client holds more than its share (a 64th of
// the cap, at least 2): one client sending its request bodies a byte at a
// time held every slot until the read timeout (30 s), and nobody else was
// served meanwhile. Only when no client holds more than its share does
// Accept wait for a connection to close.
type connLimiter struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
	// clientOf names a connection's client (its IP, an IPv6 client's
	// /64); "" for a trusted proxy, which carries many clients and is
	// never counted as one.
	clientOf func(net.Addr) string
	share    int

	// quietSeq orders the moments connections fell quiet (accepted, or
	// idle after a response): a counter, not the clock, as connState runs
	// twice per request.
	quietSeq atomic.Int64

	mu      sync.Mutex
	all     map[*limitedConn]struct{}
	clients map[string]map[*limitedConn]time.Time // accepted when
}

// newGrace is how long a new connection may stay silent before it counts
// as evictable at the cap.
const newGrace = 500 * time.Millisecond

func newConnLimiter(l net.Listener, limit int, clientOf func(net.Addr) string) *connLimiter {
	return &connLimiter{Listener: l, slots: make(chan struct{}, limit), done: make(chan struct{}),
		clientOf: clientOf, share: max(2, limit/64),
		all: map[*limitedConn]struct{}{}, clients: map[string]map[*limitedConn]time.Time{}}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		for {
			if !l.evictOne() {
				l.evictHeaviest()
			}
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case l.slots <- struct{}{}:
				t.Stop()
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			case <-t.C:
				continue
			}
			break
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	now := time.Now()
	lc := &limitedConn{Conn: c, l: l, client: l.clientOf(c.RemoteAddr()), accepted: now}
	lc.fresh.Store(true)
	lc.quiet.Store(l.quietSeq.Add(1))
	l.mu.Lock()
	l.all[lc] = struct{}{}
	if lc.client != "" {
		if l.clients[lc.client] == nil {
			l.clients[lc.client] = map[*limitedConn]time.Time{}
		}
		l.clients[lc.client][lc] = now
	}
	l.mu.Unlock()
	return lc, nil
}

func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// evictOne closes the longest-quiet evictable connection, if any, and
// reports whether it did. A connection that starts a request while it is
// chosen is left open.
func (l *connLimiter) evictOne() bool {
	now := time.Now()
	for {
		var victim *limitedConn
		var since int64
		l.mu.Lock()
		for c := range l.all {
			q := c.quiet.Load()
			if q == 0 || c.fresh.Load() && now.Sub(c.accepted) < newGrace {
				continue
			}
			if victim == nil || q < since {
				victim, since = c, q
			}
		}
		l.mu.Unlock()
		if victim == nil {
			return false
		}
		if victim.quiet.CompareAndSwap(since, 0) {
			_ = victim.Close()
			return true
		}
	}
}

// evictHeaviest closes the oldest connection of the client holding the
// most, when it holds more than its share.
func (l *connLimiter) evictHeaviest() {
	l.mu.Lock()
	var heaviest map[*limitedConn]time.Time
	for _, conns := range l.clients {
		if len(conns) > l.share && len(conns) > len(heaviest) {
			heaviest = conns
		}
	}
	var victim *limitedConn
	var since time.Time
	for c, t := range heaviest {
		if victim == nil || t.Before(since) {
			victim, since = c, t
		}
	}
	l.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
	}
}

// connState is the http.Server.ConnState hook that tells the limiter
// which connections are quiet.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok || s == http.StateNew {
		return // Accept already recorded it
	}
	if lc.fresh.Load() {
		lc.fresh.Store(false)
	}
	if s == http.StateIdle {
		lc.quiet.Store(l.quietSeq.Add(1))
	} else {
		lc.quiet.Store(0)
	}
}

type limitedConn struct {
	net.Conn
	l        *connLimiter
	client   string
	accepted time.Time
	once     sync.Once
	// quiet is when (connLimiter.quietSeq) the connection fell quiet: it
	// was accepted or went idle; 0 while it serves a request. fresh: no
	// request yet.
	quiet atomic.Int64
	fresh atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.quiet.Store(0)
		c.l.mu.Lock()
		delete(c.l.all, c)
		if conns := c.l.clients[c.client]; conns != nil {
			delete(conns, c)
			if len(conns) == 0 {
				delete(c.l.clients, c.client)
			}
		}
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// connClient names a connection's client for connLimiter by the key the
// rate limiter gives its address (an IPv6 client's /64), or "" for a
// trusted proxy.
func connClient(ip *ratelimit.ClientIP) func(net.Addr) string {
	return func(a net.Addr) string {
		key, trusted := ip.PeerKey(a.String())
		if trusted {
			return ""
		}
		return key
	}
}
