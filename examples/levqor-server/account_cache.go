package main

import (
	"sync"
	"time"
)

// Account cache defaults.
const (
	accountCacheSize   = 50_000
	accountCacheMaxAge = time.Minute
)

// account is what /api/me shows, and its JSON.
type account struct {
	email, created string
	body           []byte
}

// accountCache remembers accounts /api/me loaded, so a client polling it
// costs no query. Bounded (an arbitrary entry makes room when full),
// entries live at most accountCacheMaxAge, and deleteUser forgets the
// account before and after marking it deleted. Another replica may show a
// deleted account for a moment longer, but only to a token that is
// already revoked everywhere (deleteUser revokes every session before it
// answers), so nobody sees an account the database no longer has.
type accountCache struct {
	now func() time.Time

	mu sync.RWMutex
	m  map[string]accountEntry
}

type accountEntry struct {
	account
	at time.Time
}

func newAccountCache(now func() time.Time) *accountCache {
	return &accountCache{now: now, m: map[string]accountEntry{}}
}

func (c *accountCache) get(id string) (account, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || c.now().Sub(e.at) >= accountCacheMaxAge {
		return account{}, false
	}
	return e.account, true
}

func (c *accountCache) put(id string, a account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok && len(c.m) >= accountCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = accountEntry{account: a, at: c.now()}
}

func (c *accountCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
