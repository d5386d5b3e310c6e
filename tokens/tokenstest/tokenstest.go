// Package tokenstest is the conformance suite every tokens.Store passes:
// MemoryStore, SQLStore (SQLite and PostgreSQL) and RedisStore (single
// node and cluster) run it, and so can a Store of your own:
//
//	func TestMyStore(t *testing.T) {
//		tokenstest.Run(t, tokenstest.Options{Persistent: true}, func(t *testing.T) func() tokens.Store {
//			db := openTestDB(t)
//			return func() tokens.Store { return NewMyStore(db) }
//		})
//	}
//
// It drives the store through a tokens.Manager: issue and verify,
// rotation, reuse detection, the grace period (also under concurrent
// refreshes), revocation of tokens and families, unknown families,
// persistence across a reopen, and cleanup.
package tokenstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
)

// Options describe the store under test.
type Options struct {
	// Persistent: state survives reopening (a new handle on the same
	// backing data), as SQL and Redis stores do.
	Persistent bool
	// SelfExpiring: entries expire by themselves, so CleanupExpired
	// removes nothing (Redis).
	SelfExpiring bool
}

// Opener is called once per subtest; the function it returns opens the
// store, and calling it again opens the same backing data afresh, as a
// restarted process would.
type Opener func(t *testing.T) func() tokens.Store

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, o Options, opener Opener) {
	ctx := context.Background()
	key, err := tokens.GenerateEd25519Key()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := tokens.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T) tokens.Store { return opener(t)() }
	manager := func(t *testing.T, s tokens.Store, clk *testclock.Clock, grace time.Duration) *tokens.Manager {
		t.Helper()
		m, err := tokens.New(tokens.Config{Keys: ks, Store: s, Now: clk.Now, RefreshGrace: grace})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("issue and verify", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 0)
		p, err := m.Issue(ctx, "user-1")
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Verify(ctx, p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "user-1" || c.Type != tokens.TypeAccess || c.Family != p.Family || c.ID == "" {
			t.Fatalf("claims = %+v", c)
		}
		if p.ExpiresIn != 900 {
			t.Fatalf("expires_in = %d, want 900", p.ExpiresIn)
		}
	})

	t.Run("rotation and reuse revokes the family", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, -1) // no grace
		p0, err := m.Issue(ctx, "user-2")
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		p1, err := m.Refresh(ctx, p0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if p1.RefreshToken == p0.RefreshToken || p1.Family != p0.Family {
			t.Fatal("refresh did not rotate within the family")
		}
		clk.Advance(time.Minute)
		p2, err := m.Refresh(ctx, p1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// p0's token is two rotations old: replaying it is reuse.
		if _, err := m.Refresh(ctx, p0.RefreshToken); !errors.Is(err, tokens.ErrReused) {
			t.Fatalf("replayed refresh: err = %v, want ErrReused", err)
		}
		if _, err := m.Refresh(ctx, p2.RefreshToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("newest refresh after reuse: err = %v, want ErrRevoked", err)
		}
		for i, at := range []string{p0.AccessToken, p1.AccessToken, p2.AccessToken} {
			if _, err := m.Verify(ctx, at); !errors.Is(err, tokens.ErrRevoked) {
				t.Fatalf("access token %d after reuse: err = %v, want ErrRevoked", i, err)
			}
		}
	})

	t.Run("previous token without grace is reuse", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, -1)
		p0, _ := m.Issue(ctx, "user-3")
		p1, err := m.Refresh(ctx, p0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Refresh(ctx, p0.RefreshToken); !errors.Is(err, tokens.ErrReused) {
			t.Fatalf("err = %v, want ErrReused", err)
		}
		if _, err := m.Verify(ctx, p1.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("err = %v, want ErrRevoked", err)
		}
	})

	t.Run("grace period", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 5*time.Second)
		p0, _ := m.Issue(ctx, "user-4")
		p1, err := m.Refresh(ctx, p0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(4 * time.Second)
		p2, err := m.Refresh(ctx, p0.RefreshToken) // a concurrent retry
		if err != nil {
			t.Fatalf("previous token within grace: %v", err)
		}
		if jtiOf(t, p1.RefreshToken) != jtiOf(t, p2.RefreshToken) {
			t.Fatal("grace refresh must share the current refresh jti")
		}
		// Whichever response the client kept, it can go on.
		p3, err := m.Refresh(ctx, p2.RefreshToken)
		if err != nil {
			t.Fatalf("sibling of current token: %v", err)
		}
		clk.Advance(6 * time.Second)
		if _, err := m.Refresh(ctx, p0.RefreshToken); !errors.Is(err, tokens.ErrReused) {
			t.Fatalf("two rotations old: err = %v, want ErrReused", err)
		}
		if _, err := m.Refresh(ctx, p3.RefreshToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("err = %v, want ErrRevoked", err)
		}
	})

	t.Run("grace expires", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 5*time.Second)
		p0, _ := m.Issue(ctx, "user-5")
		if _, err := m.Refresh(ctx, p0.RefreshToken); err != nil {
			t.Fatal(err)
		}
		clk.Advance(5 * time.Second)
		if _, err := m.Refresh(ctx, p0.RefreshToken); !errors.Is(err, tokens.ErrReused) {
			t.Fatalf("err = %v, want ErrReused", err)
		}
	})

	t.Run("concurrent refreshes within grace agree", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 5*time.Second)
		p0, _ := m.Issue(ctx, "user-6")
		const n = 8
		jtis := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p, err := m.Refresh(ctx, p0.RefreshToken)
				errs[i] = err
				if err == nil {
					jtis[i] = jtiOf(t, p.RefreshToken)
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("refresh %d: %v", i, errs[i])
			}
			if jtis[i] != jtis[0] {
				t.Fatalf("refresh %d got jti %s, refresh 0 got %s: two branches", i, jtis[i], jtis[0])
			}
		}
	})

	t.Run("revoke access token", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 0)
		p, _ := m.Issue(ctx, "user-7")
		if err := m.Revoke(ctx, p.AccessToken); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("err = %v, want ErrRevoked", err)
		}
		// Only that token: the family still refreshes.
		p1, err := m.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, p1.AccessToken); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("revoke refresh token revokes family", func(t *testing.T) {
		clk := testclock.New(testStart())
		m := manager(t, open(t), clk, 0)
		p, _ := m.Issue(ctx, "user-8")
		other, _ := m.Issue(ctx, "user-8") // another device
		if err := m.Revoke(ctx, p.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("err = %v, want ErrRevoked", err)
		}
		if _, err := m.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("err = %v, want ErrRevoked", err)
		}
		if _, err := m.Verify(ctx, other.AccessToken); err != nil {
			t.Fatalf("other family affected: %v", err)
		}
	})

	t.Run("unknown family", func(t *testing.T) {
		clk := testclock.New(testStart())
		m1 := manager(t, open(t), clk, 0)
		p, _ := m1.Issue(ctx, "user-9")
		m2 := manager(t, open(t), clk, 0) // a different, empty store
		if _, err := m2.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrUnknownFamily) {
			t.Fatalf("refresh: err = %v, want ErrUnknownFamily", err)
		}
		// A store without the family (e.g. one that lost its data) refuses
		// its tokens instead of accepting what may have been logged out.
		if _, err := m2.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("verify: err = %v, want ErrRevoked", err)
		}
		if _, err := m2.VerifyRefresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("verify refresh: err = %v, want ErrRevoked", err)
		}
	})

	if o.Persistent {
		t.Run("survives reopen", func(t *testing.T) {
			clk := testclock.New(testStart())
			reopen := opener(t)
			m := manager(t, reopen(), clk, -1)
			revoked, _ := m.Issue(ctx, "user-10")
			kept, _ := m.Issue(ctx, "user-10")
			if err := m.Revoke(ctx, revoked.AccessToken); err != nil {
				t.Fatal(err)
			}
			p1, err := m.Refresh(ctx, kept.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			m = manager(t, reopen(), clk, -1) // a restarted process
			if _, err := m.Verify(ctx, revoked.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
				t.Fatalf("revocation lost on reopen: %v", err)
			}
			if _, err := m.Refresh(ctx, p1.RefreshToken); err != nil {
				t.Fatalf("current refresh after reopen: %v", err)
			}
			if _, err := m.Refresh(ctx, kept.RefreshToken); !errors.Is(err, tokens.ErrReused) {
				t.Fatalf("rotation state lost on reopen: %v", err)
			}
		})
	}

	t.Run("cleanup expired", func(t *testing.T) {
		clk := testclock.New(testStart())
		s := open(t)
		m := manager(t, s, clk, 0)
		p, _ := m.Issue(ctx, "user-11")
		if err := m.Revoke(ctx, p.AccessToken); err != nil {
			t.Fatal(err)
		}
		n, err := s.CleanupExpired(ctx, clk.Now())
		if err != nil || n != 0 {
			t.Fatalf("cleanup before expiry removed %d (err %v)", n, err)
		}
		if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Fatalf("revocation dropped early: %v", err)
		}
		n, err = s.CleanupExpired(ctx, clk.Now().Add(tokens.DefaultRefreshTTL+time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !o.SelfExpiring && n != 2 { // the revocation and the family
			t.Fatalf("cleanup after expiry removed %d, want 2", n)
		}
	})
}

// testStart is near the real time because Redis expires keys on its own
// clock.
func testStart() time.Time { return time.Now().Truncate(time.Second) }

// jtiOf reads the jti of a token the Manager issued (its payload only:
// the Manager verified it already).
func jtiOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("payload without jti: %v", err)
	}
	return c.ID
}
