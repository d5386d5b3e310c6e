package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
	"github.com/levqor/levqor/tokens/tokenstest"
)

// countingStore counts Revoked calls and can hold them until released.
type countingStore struct {
	tokens.Store
	calls atomic.Int64
	hold  chan chan struct{} // when set, each Revoked sends a channel and waits on it
}

func (s *countingStore) Revoked(ctx context.Context, family, jti string) (bool, error) {
	s.calls.Add(1)
	if s.hold != nil {
		release := make(chan struct{})
		s.hold <- release
		<-release
	}
	return s.Store.Revoked(ctx, family, jti)
}

// recordingFeed records publications and fails them on demand.
type recordingFeed struct {
	mu        sync.Mutex
	published []string
	fail      bool
}

func (f *recordingFeed) Publish(_ context.Context, family string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("publish refused")
	}
	f.published = append(f.published, family)
	return nil
}

func (f *recordingFeed) Subscribe(ctx context.Context, ev tokens.FeedEvents) {
	ev.Up()
	<-ctx.Done()
}

func newCache(t testing.TB, cfg tokens.CacheConfig) *tokens.Cache {
	t.Helper()
	c, err := tokens.NewCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCacheConformance: a Cache is a Store like any other.
func TestCacheConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{}, func(t *testing.T) func() tokens.Store {
			c := newCache(t, tokens.CacheConfig{Store: memStore(t)})
			return func() tokens.Store { return c }
		})
	})
	t.Run("redis with feed", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{Persistent: true, SelfExpiring: true}, func(t *testing.T) func() tokens.Store {
			srv := redistest.Start(t)
			return func() tokens.Store {
				cl := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				t.Cleanup(func() { _ = cl.Close() })
				s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: cl})
				feed, _ := tokens.NewRedisFeed(tokens.RedisFeedConfig{Client: cl})
				c := newCache(t, tokens.CacheConfig{Store: s, Feed: feed})
				waitLive(t, c)
				return c
			}
		})
	})
	t.Run("redis cluster with feed", func(t *testing.T) {
		cluster := redistest.StartCluster(t)
		n := 0
		tokenstest.Run(t, tokenstest.Options{Persistent: true, SelfExpiring: true}, func(t *testing.T) func() tokens.Store {
			n++
			prefix := fmt.Sprintf("cache%d:", n)
			return func() tokens.Store {
				cl := cluster.Client()
				s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: cl, Prefix: prefix})
				feed, _ := tokens.NewRedisFeed(tokens.RedisFeedConfig{Client: cl, Channel: prefix + "feed"})
				c := newCache(t, tokens.CacheConfig{Store: s, Feed: feed})
				waitLive(t, c)
				return c
			}
		})
	})
}

func waitLive(t testing.TB, c *tokens.Cache) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Live() {
		if time.Now().After(deadline) {
			t.Fatal("cache not live within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, cfg tokens.CacheConfig) (*tokens.Manager, *countingStore, *tokens.Cache, *testclock.Clock) {
		clk := testclock.New(fixedNow)
		counting := &countingStore{Store: memStore(t)}
		cfg.Store, cfg.Now = counting, clk.Now
		c := newCache(t, cfg)
		m := newManager(t, tokens.Config{Keys: keySet(t, hmacKey(t, "k")), Store: c, Now: clk.Now})
		return m, counting, c, clk
	}
	verify := func(t *testing.T, m *tokens.Manager, token string, want error) {
		t.Helper()
		if _, err := m.Verify(ctx, token); !errors.Is(err, want) {
			t.Fatalf("verify: err = %v, want %v", err, want)
		}
	}

	t.Run("a repeated token costs one store call", func(t *testing.T) {
		m, counting, _, _ := setup(t, tokens.CacheConfig{})
		p, _ := m.Issue(ctx, "u")
		for range 5 {
			verify(t, m, p.AccessToken, nil)
		}
		if n := counting.calls.Load(); n != 1 {
			t.Fatalf("%d store calls for 5 checks of one token", n)
		}
	})

	t.Run("MaxAge", func(t *testing.T) {
		m, counting, _, clk := setup(t, tokens.CacheConfig{MaxAge: time.Second})
		p, _ := m.Issue(ctx, "u")
		verify(t, m, p.AccessToken, nil)
		clk.Advance(time.Second)
		verify(t, m, p.AccessToken, nil)
		if n := counting.calls.Load(); n != 2 {
			t.Fatalf("%d store calls; an answer older than MaxAge was reused", n)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		m, _, c, _ := setup(t, tokens.CacheConfig{MaxEntries: 5})
		for range 20 {
			p, _ := m.Issue(ctx, "u")
			verify(t, m, p.AccessToken, nil)
		}
		if c.Len() > 5 {
			t.Fatalf("cache holds %d tokens, bound 5", c.Len())
		}
	})

	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, m *tokens.Manager, clk *testclock.Clock, p tokens.Pair)
	}{
		{"logout", func(t *testing.T, m *tokens.Manager, _ *testclock.Clock, p tokens.Pair) {
			if err := m.Revoke(ctx, p.AccessToken); err != nil {
				t.Fatal(err)
			}
		}},
		{"family revoked (account deletion)", func(t *testing.T, m *tokens.Manager, _ *testclock.Clock, p tokens.Pair) {
			if err := m.RevokeFamily(ctx, p.Family); err != nil {
				t.Fatal(err)
			}
		}},
		{"refresh reuse", func(t *testing.T, m *tokens.Manager, clk *testclock.Clock, p tokens.Pair) {
			if _, err := m.Refresh(ctx, p.RefreshToken); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
			if _, err := m.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrReused) {
				t.Fatal(err)
			}
		}},
	} {
		t.Run("invalidated by "+tc.name, func(t *testing.T) {
			feed := &recordingFeed{}
			m, _, c, clk := setup(t, tokens.CacheConfig{Feed: feed})
			waitLive(t, c)
			p, _ := m.Issue(ctx, "u")
			other, _ := m.Issue(ctx, "u")
			verify(t, m, p.AccessToken, nil)
			verify(t, m, other.AccessToken, nil)
			tc.revoke(t, m, clk, p)
			verify(t, m, p.AccessToken, tokens.ErrRevoked)
			verify(t, m, other.AccessToken, nil)
			feed.mu.Lock()
			defer feed.mu.Unlock()
			if len(feed.published) != 1 || feed.published[0] != p.Family {
				t.Fatalf("published %v, want the family %s once", feed.published, p.Family)
			}
		})
	}

	t.Run("a revocation not announced is an error", func(t *testing.T) {
		feed := &recordingFeed{fail: true}
		m, _, c, _ := setup(t, tokens.CacheConfig{Feed: feed})
		waitLive(t, c)
		p, _ := m.Issue(ctx, "u")
		if err := m.Revoke(ctx, p.AccessToken); err == nil || !strings.Contains(err.Error(), "not announced") {
			t.Fatalf("revoke with the feed refusing: err = %v", err)
		}
		verify(t, m, p.AccessToken, tokens.ErrRevoked) // stored all the same
	})

	t.Run("an invalidation racing a store read wins", func(t *testing.T) {
		clk := testclock.New(fixedNow)
		counting := &countingStore{Store: memStore(t), hold: make(chan chan struct{})}
		c := newCache(t, tokens.CacheConfig{Store: counting, Now: clk.Now})
		family := "fam"
		_ = counting.CreateFamily(ctx, family, "u", "r1", fixedNow.Add(time.Hour))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.Revoked(ctx, family, "a1") // reads "not revoked"...
		}()
		release := <-counting.hold
		_ = c.RevokeToken(ctx, family, "a1", fixedNow.Add(time.Hour)) // ...while this revokes it
		close(release)
		<-done
		go func() { close(<-counting.hold) }()
		if revoked, _ := c.Revoked(ctx, family, "a1"); !revoked {
			t.Fatal("a stale 'not revoked' read was cached over the revocation")
		}
	})

	t.Run("Flush", func(t *testing.T) {
		m, counting, c, _ := setup(t, tokens.CacheConfig{})
		p, _ := m.Issue(ctx, "u")
		verify(t, m, p.AccessToken, nil)
		c.Flush()
		verify(t, m, p.AccessToken, nil)
		if n := counting.calls.Load(); n != 2 || c.Len() != 1 {
			t.Fatalf("after Flush: %d store calls, %d cached", n, c.Len())
		}
	})

	t.Run("config", func(t *testing.T) {
		for _, cfg := range []tokens.CacheConfig{{}, {Store: memStore(t), MaxEntries: -1}, {Store: memStore(t), MaxAge: -1}} {
			if _, err := tokens.NewCache(cfg); err == nil {
				t.Errorf("%+v accepted", cfg)
			}
		}
	})
}

// TestCacheFeedAcrossProcesses: two caches on one Redis, as two replicas.
// A revocation through one is refused by the other at once; while the
// feed is down the other checks the store on every request; after Redis
// returns it answers from memory again.
func TestCacheFeedAcrossProcesses(t *testing.T) {
	srv := redistest.StartPersistent(t)
	srv.RequireReal("stopping and restarting the server under a subscription")
	ctx := context.Background()
	ks := keySet(t, hmacKey(t, "k"))
	replica := func() (*tokens.Manager, *tokens.Cache, *countingStore) {
		cl := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = cl.Close() })
		rs, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: cl})
		counting := &countingStore{Store: rs}
		feed, _ := tokens.NewRedisFeed(tokens.RedisFeedConfig{Client: cl, Ping: 100 * time.Millisecond})
		c := newCache(t, tokens.CacheConfig{Store: counting, Feed: feed})
		waitLive(t, c)
		return newManager(t, tokens.Config{Keys: ks, Store: c}), c, counting
	}
	a, _, _ := replica()
	b, bCache, bStore := replica()

	p, _ := a.Issue(ctx, "u")
	for range 3 {
		if _, err := b.Verify(ctx, p.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := bStore.calls.Load(); n != 1 {
		t.Fatalf("replica b: %d store calls for 3 checks", n)
	}
	if err := a.Revoke(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for {
		_, err := b.Verify(ctx, p.AccessToken)
		if errors.Is(err, tokens.ErrRevoked) {
			break
		}
		if time.Since(revokedAt) > 100*time.Millisecond {
			t.Fatalf("replica b still accepts the token 100 ms after replica a revoked it: %v", err)
		}
		time.Sleep(time.Millisecond)
	}

	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for bCache.Live() {
		if time.Now().After(deadline) {
			t.Fatal("cache still live 5s after Redis stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p2, err := a.Issue(ctx, "u")
	if err == nil {
		t.Fatalf("issue with Redis down succeeded: %v", p2.Family)
	}
	srv.Restart()
	waitLive(t, bCache)
	p3, err := a.Issue(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	before := bStore.calls.Load()
	for range 3 {
		if _, err := b.Verify(ctx, p3.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := bStore.calls.Load() - before; n != 1 {
		t.Fatalf("after Redis returned: %d store calls for 3 checks, want 1", n)
	}
	if _, err := b.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
		t.Fatalf("revocation lost across the outage: %v", err)
	}
}
