package tokens

import (
	"context"
	"sync"
	"time"
)

// DefaultCleanupInterval is how often MemoryStore's janitor drops expired entries.
const DefaultCleanupInterval = time.Minute

// MemoryConfig configures a MemoryStore.
type MemoryConfig struct {
	// CleanupInterval is the janitor's period. Default DefaultCleanupInterval;
	// negative disables the janitor (call CleanupExpired yourself).
	CleanupInterval time.Duration
	// Now is the janitor's clock. Default time.Now.
	Now func() time.Time
}

// MemoryStore is a Store for a single process. Its state is lost on exit:
// after a restart every refresh token fails with ErrUnknownFamily and earlier
// revocations are forgotten. Use SQLStore or RedisStore to survive restarts
// or to share state between replicas.
type MemoryStore struct {
	mu       sync.RWMutex
	families map[string]*memFamily
	revoked  map[string]time.Time // jti -> expiry

	now       func() time.Time
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memFamily struct {
	familyState
	expiresAt time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore validates cfg and starts the janitor; Close stops it.
// It never fails today; the error keeps the constructor shape of every
// other store.
func NewMemoryStore(cfg MemoryConfig) (*MemoryStore, error) {
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = DefaultCleanupInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &MemoryStore{
		families: make(map[string]*memFamily),
		revoked:  make(map[string]time.Time),
		now:      cfg.Now,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.CleanupInterval < 0 {
		close(s.done)
		return s, nil
	}
	go s.janitor(cfg.CleanupInterval)
	return s, nil
}

func (s *MemoryStore) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_, _ = s.CleanupExpired(context.Background(), s.now())
		}
	}
}

// Close stops the janitor and waits for it. It is safe to call more than once.
func (s *MemoryStore) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// CreateFamily implements Store.
func (s *MemoryStore) CreateFamily(_ context.Context, family, _ string, jti string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.families[family] = &memFamily{familyState: familyState{current: jti}, expiresAt: expiresAt}
	return nil
}

// Rotate implements Store.
func (s *MemoryStore) Rotate(_ context.Context, r Rotation) (string, error) {
	family, presented, next, now, grace, expiresAt := r.Family, r.Presented, r.Next, r.Now, r.Grace, r.ExpiresAt
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[family]
	if !ok {
		return "", ErrUnknownFamily
	}
	switch decideRotation(f.familyState, presented, now, grace) {
	case rotateAdvance:
		f.previous, f.current, f.retiredAt = f.current, next, now
		f.expiresAt = later(f.expiresAt, expiresAt)
		return next, nil
	case rotateGrace:
		return f.current, nil
	case rotateRevoked:
		return "", ErrRevoked
	default:
		f.revoked = true
		f.expiresAt = later(f.expiresAt, expiresAt)
		return "", ErrReused
	}
}

// RevokeToken implements Store.
func (s *MemoryStore) RevokeToken(_ context.Context, _, jti string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[jti] = later(s.revoked[jti], expiresAt)
	return nil
}

// RevokeFamily implements Store.
func (s *MemoryStore) RevokeFamily(_ context.Context, family string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[family]
	if !ok {
		f = &memFamily{}
		s.families[family] = f
	}
	f.revoked = true
	f.expiresAt = later(f.expiresAt, expiresAt)
	return nil
}

// Revoked implements Store.
func (s *MemoryStore) Revoked(_ context.Context, family, jti string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.revoked[jti]; ok {
		return true, nil
	}
	f, ok := s.families[family]
	return !ok || f.revoked, nil
}

// CleanupExpired implements Store.
func (s *MemoryStore) CleanupExpired(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for jti, exp := range s.revoked {
		if exp.Before(now) {
			delete(s.revoked, jti)
			n++
		}
	}
	for id, f := range s.families {
		if f.expiresAt.Before(now) {
			delete(s.families, id)
			n++
		}
	}
	return n, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
