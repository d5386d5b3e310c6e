package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levqor/levqor/ratelimit"
)

// forgeryRate bounds the forged tokens (bad signature, claims that pass)
// one client IP may have checked: each costs an Ed25519 verification,
// about 40 µs of CPU, three times a served request. Past it, that IP's
// tokens are checked only if the server verified them already
// (tokens.Manager.Cached): a user behind the same address keeps using the
// token they had, and one issued to them meanwhile waits out the block.
var forgeryRate = ratelimit.Rate{Limit: 20, Period: time.Minute, Burst: 20}

// forgeryGuard counts forged tokens per client IP and blocks the IPs past
// forgeryRate until the rate allows them again. Its maps are bounded by
// maxKeys (LEVQOR_RATE_LIMIT_KEYS): when the blocked set is full, expired
// blocks are dropped and, if none has expired, the new one is not recorded
// (the IP is still rate limited per request).
type forgeryGuard struct {
	lim     *ratelimit.Memory
	maxKeys int
	now     func() time.Time
	any     atomic.Int64 // len(until): the hot path's only cost while none is blocked

	mu      sync.Mutex
	until   map[string]time.Time
	sweepAt time.Time // next drop of ended blocks, so active turns false again
}

func newForgeryGuard(maxKeys int) (*forgeryGuard, error) {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: forgeryRate, MaxKeys: maxKeys})
	if err != nil {
		return nil, err
	}
	return &forgeryGuard{lim: lim, maxKeys: maxKeys, now: time.Now, until: map[string]time.Time{}}, nil
}

// active reports whether any IP may be blocked: while none is, requests
// need not name their client.
func (g *forgeryGuard) active() bool { return g.any.Load() != 0 }

// blocked reports whether ip's uncached tokens go unverified now. Ended
// blocks are dropped at most once a second, whoever asks.
func (g *forgeryGuard) blocked(ip string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !now.Before(g.sweepAt) {
		g.dropEnded(now)
		g.sweepAt = now.Add(time.Second)
	}
	u, ok := g.until[ip]
	return ok && now.Before(u)
}

// dropEnded deletes the blocks that ended by now; g.mu held.
func (g *forgeryGuard) dropEnded(now time.Time) {
	for k, u := range g.until {
		if !now.Before(u) {
			delete(g.until, k)
		}
	}
	g.any.Store(int64(len(g.until)))
}

// forged counts a forged token from ip and reports whether ip is now
// blocked.
func (g *forgeryGuard) forged(ctx context.Context, ip string) bool {
	res, err := g.lim.Allow(ctx, ip)
	if err != nil || res.Allowed {
		return false
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.until[ip]; !ok && len(g.until) >= g.maxKeys {
		if g.dropEnded(now); len(g.until) >= g.maxKeys {
			return false
		}
	}
	g.until[ip] = now.Add(res.RetryAfter)
	g.any.Store(int64(len(g.until)))
	return true
}

func (g *forgeryGuard) Close() error { return g.lim.Close() }
