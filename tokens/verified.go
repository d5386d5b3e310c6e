package tokens

import (
	"sync"
	"time"
)

// DefaultVerifiedCacheSize is how many verified access tokens a Manager
// remembers by default (Config.VerifiedCacheSize).
const DefaultVerifiedCacheSize = 10_000

// verifiedCache remembers access tokens whose signature and claims
// verified, keyed by the whole token string, so a client presenting the
// same token again skips the JWT parse and the signature check. It holds
// no revocation state: Verify asks the RevocationChecker on every call, hit
// or miss, so revoking, logging out, reuse detection and account deletion
// apply to cached tokens at once. An entry is used only while the key set
// is the one that verified it (Rotate and Retire empty the cache in
// effect) and only within the token's validity (nbf, iat and exp, with the
// leeway), so a hit never accepts what a fresh verification would refuse.
// Bounded: when full, an arbitrary entry makes room (Go's randomised map
// iteration), so a burst of distinct tokens costs at most size entries.
type verifiedCache struct {
	size int

	mu sync.RWMutex
	m  map[string]verifiedEntry
}

type verifiedEntry struct {
	claims      Claims
	keys        *keySnapshot // the key set that verified it
	from, until time.Time    // valid when from <= now < until
}

func newVerifiedCache(size int) *verifiedCache {
	if size <= 0 {
		return nil
	}
	return &verifiedCache{size: size, m: make(map[string]verifiedEntry, min(size, 1024))}
}

// get returns a copy of the claims of token if it verified under keys and
// is valid at now.
func (c *verifiedCache) get(token string, keys *keySnapshot, now time.Time) (*Claims, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || !e.validAt(keys, now) {
		return nil, false
	}
	// Callers may change theirs: a copy, and of the audience too, in one
	// allocation for the usual single audience.
	if len(e.claims.Audience) != 1 {
		claims := e.claims
		claims.Audience = append([]string(nil), e.claims.Audience...)
		return &claims, true
	}
	cp := &claimsWithAudience{Claims: e.claims, aud: [1]string{e.claims.Audience[0]}}
	cp.Audience = cp.aud[:]
	return &cp.Claims, true
}

// claimsWithAudience holds a copy of claims with one audience.
type claimsWithAudience struct {
	Claims
	aud [1]string
}

// has reports whether get would find token, without copying its claims.
func (c *verifiedCache) has(token string, keys *keySnapshot, now time.Time) bool {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	return ok && e.validAt(keys, now)
}

// validAt: verified under keys, and within its validity at now.
func (e verifiedEntry) validAt(keys *keySnapshot, now time.Time) bool {
	return e.keys == keys && !now.Before(e.from) && now.Before(e.until)
}

// put remembers verified claims, valid from..until.
func (c *verifiedCache) put(token string, claims *Claims, keys *keySnapshot, from, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[token]; !ok && len(c.m) >= c.size {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[token] = verifiedEntry{claims: *claims, keys: keys, from: from, until: until}
}

// len reports the number of entries (for tests).
func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
