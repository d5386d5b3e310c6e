package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
)

// TestVerifiedCache: a verified access token is remembered, and a
// remembered token is refused exactly when a fresh verification would
// refuse it.
func TestVerifiedCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, cfg tokens.Config) (*tokens.Manager, *testclock.Clock, tokens.Pair) {
		clk := testclock.New(fixedNow)
		if cfg.Keys == nil {
			cfg.Keys = keySet(t, hmacKey(t, "k1"))
		}
		cfg.Store, cfg.Now = memStore(t), clk.Now
		m := newManager(t, cfg)
		p, err := m.Issue(ctx, "user")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := m.Verify(ctx, p.AccessToken); err != nil {
				t.Fatal(err)
			}
		}
		if n := tokens.VerifiedCacheLen(m); n != 1 {
			t.Fatalf("cache holds %d tokens after verifying one twice, want 1", n)
		}
		return m, clk, p
	}
	for _, tc := range []struct {
		name  string
		event func(t *testing.T, m *tokens.Manager, clk *testclock.Clock, p tokens.Pair)
		want  error
	}{
		{"logout (revoke the access token)", func(t *testing.T, m *tokens.Manager, _ *testclock.Clock, p tokens.Pair) {
			if err := m.Revoke(ctx, p.AccessToken); err != nil {
				t.Fatal(err)
			}
		}, tokens.ErrRevoked},
		{"revoke the refresh token (its family)", func(t *testing.T, m *tokens.Manager, _ *testclock.Clock, p tokens.Pair) {
			if err := m.Revoke(ctx, p.RefreshToken); err != nil {
				t.Fatal(err)
			}
		}, tokens.ErrRevoked},
		{"account deletion (revoke the family by id)", func(t *testing.T, m *tokens.Manager, _ *testclock.Clock, p tokens.Pair) {
			if err := m.RevokeFamily(ctx, p.Family); err != nil {
				t.Fatal(err)
			}
		}, tokens.ErrRevoked},
		{"refresh reuse detected", func(t *testing.T, m *tokens.Manager, clk *testclock.Clock, p tokens.Pair) {
			if _, err := m.Refresh(ctx, p.RefreshToken); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute) // past the grace period
			if _, err := m.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrReused) {
				t.Fatalf("reuse: %v", err)
			}
		}, tokens.ErrRevoked},
		{"expiry", func(t *testing.T, _ *tokens.Manager, clk *testclock.Clock, _ tokens.Pair) {
			clk.Advance(tokens.DefaultAccessTTL + tokens.DefaultLeeway)
		}, tokens.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, clk, p := setup(t, tokens.Config{})
			tc.event(t, m, clk, p)
			if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tc.want) {
				t.Fatalf("cached token after %s: err = %v, want %v", tc.name, err, tc.want)
			}
		})
	}

	t.Run("key retired", func(t *testing.T) {
		ks := keySet(t, hmacKey(t, "old"))
		m, _, p := setup(t, tokens.Config{Keys: ks})
		if err := ks.Rotate(edKey(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, p.AccessToken); err != nil {
			t.Fatalf("after rotation the old key still verifies: %v", err)
		}
		if err := ks.Retire("old"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrUnknownKey) {
			t.Fatalf("cached token of a retired key: err = %v, want ErrUnknownKey", err)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		m, _, _ := setup(t, tokens.Config{VerifiedCacheSize: 3})
		for range 10 {
			p, _ := m.Issue(ctx, "user")
			if _, err := m.Verify(ctx, p.AccessToken); err != nil {
				t.Fatal(err)
			}
		}
		if n := tokens.VerifiedCacheLen(m); n != 3 {
			t.Fatalf("cache holds %d tokens, bound 3", n)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		clk := testclock.New(fixedNow)
		m := newManager(t, tokens.Config{Keys: keySet(t, hmacKey(t, "k")), Store: memStore(t), Now: clk.Now, VerifiedCacheSize: -1})
		p, _ := m.Issue(ctx, "user")
		if _, err := m.Verify(ctx, p.AccessToken); err != nil || tokens.VerifiedCacheLen(m) != 0 {
			t.Fatalf("disabled cache: err %v, len %d", err, tokens.VerifiedCacheLen(m))
		}
	})

	t.Run("callers cannot change the cached claims", func(t *testing.T) {
		m, _, p := setup(t, tokens.Config{})
		c, _ := m.Verify(ctx, p.AccessToken)
		c.Subject, c.Audience[0] = "admin", "other-api"
		again, _ := m.Verify(ctx, p.AccessToken)
		if again.Subject != "user" || again.Audience[0] != tokens.DefaultAudience {
			t.Fatalf("cached claims changed by a caller: %+v", again)
		}
	})

	t.Run("not yet valid is never cached", func(t *testing.T) {
		clk := testclock.New(fixedNow)
		ks := keySet(t, hmacKey(t, "k"))
		store := memStore(t)
		future := newManager(t, tokens.Config{Keys: ks, Store: store, Now: func() time.Time { return fixedNow.Add(time.Hour) }})
		p, _ := future.Issue(ctx, "user")
		m := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now})
		for i := range 2 {
			if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrNotYetValid) {
				t.Fatalf("attempt %d: err = %v, want ErrNotYetValid", i, err)
			}
		}
		if n := tokens.VerifiedCacheLen(m); n != 0 {
			t.Fatalf("%d refused tokens cached", n)
		}
	})
}

func ExampleConfig_verifiedCacheSize() {
	ks, _ := tokens.NewKeySet(mustHMAC("k1"))
	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
	defer store.Close()
	m, _ := tokens.New(tokens.Config{Keys: ks, Store: store, VerifiedCacheSize: 50_000})
	ctx := context.Background()
	p, _ := m.Issue(ctx, "user-1")
	_, _ = m.Verify(ctx, p.AccessToken)  // parsed and checked
	c, _ := m.Verify(ctx, p.AccessToken) // from the cache, still checked for revocation
	_ = m.Revoke(ctx, p.AccessToken)
	_, err := m.Verify(ctx, p.AccessToken)
	fmt.Println(c.Subject, errors.Is(err, tokens.ErrRevoked))
	// Output: user-1 true
}

func mustHMAC(kid string) tokens.Key {
	k, err := tokens.NewHMACKey(kid, testSecret)
	if err != nil {
		panic(err)
	}
	return k
}

// TestCached: Cached is true exactly while Verify would find the token in
// the cache: not before its first verification, not once it expired or
// the keys changed, never without the cache, and it does not consult
// revocation.
func TestCached(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(fixedNow)
	ks := keySet(t, hmacKey(t, "k1"))
	store := memStore(t)
	m := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now})
	own, err := m.Issue(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Cached(own.AccessToken) {
		t.Fatal("a token this manager issued is not cached")
	}
	// One issued elsewhere (a replica with the same keys and store) is
	// cached once verified.
	replica := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now})
	// The claims remembered at issuance are the claims a verification
	// finds.
	cached, err := m.Verify(ctx, own.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := replica.Verify(ctx, own.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached, parsed) {
		t.Fatalf("claims remembered at issuance %+v, verified %+v", cached, parsed)
	}
	p, err := replica.Issue(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if m.Cached(p.AccessToken) {
		t.Fatal("cached before any verification")
	}
	if _, err := m.Verify(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	if !m.Cached(p.AccessToken) || m.Cached(p.AccessToken+"x") {
		t.Fatal("Cached does not match the verified token exactly")
	}
	if err := m.Revoke(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	if !m.Cached(p.AccessToken) {
		t.Fatal("revocation dropped the token from the cache (Verify asks the store; Cached need not)")
	}
	clk.Advance(tokens.DefaultAccessTTL + tokens.DefaultLeeway)
	if m.Cached(p.AccessToken) {
		t.Fatal("cached after expiry")
	}

	p2, _ := m.Issue(ctx, "user")
	if _, err := m.Verify(ctx, p2.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := ks.Rotate(hmacKey(t, "k2")); err != nil {
		t.Fatal(err)
	}
	if m.Cached(p2.AccessToken) {
		t.Fatal("cached after the keys changed")
	}

	off := newManager(t, tokens.Config{Keys: ks, Store: memStore(t), Now: clk.Now, VerifiedCacheSize: -1})
	p3, _ := off.Issue(ctx, "user")
	_, _ = off.Verify(ctx, p3.AccessToken)
	if off.Cached(p3.AccessToken) {
		t.Fatal("cached without a cache")
	}
}
