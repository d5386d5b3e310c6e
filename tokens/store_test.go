package tokens_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
)

// storeFactory opens a store; calling it again opens the same backing data
// afresh (new handle or client), as a restarted process would. persistent
// says whether that data survives (false for MemoryStore).
type storeFactory struct {
	name       string
	open       func(t *testing.T) (reopen func() tokens.Store)
	persistent bool
	// selfExpiring stores drop entries on their own (CleanupExpired is a no-op).
	selfExpiring bool
}

func storeFactories() []storeFactory {
	return []storeFactory{
		{name: "memory", open: func(t *testing.T) func() tokens.Store {
			s := memStore(t)
			return func() tokens.Store { return s }
		}},
		{name: "sqlite", persistent: true, open: func(t *testing.T) func() tokens.Store {
			path := sqlitetest.Path(t)
			return func() tokens.Store {
				db := sqlitetest.Open(t, path)
				s, err := tokens.NewSQLStore(context.Background(), tokens.SQLConfig{DB: db})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
		{name: "redis", persistent: true, selfExpiring: true, open: func(t *testing.T) func() tokens.Store {
			srv := redistest.Start(t)
			return func() tokens.Store {
				c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				t.Cleanup(func() { _ = c.Close() })
				s, err := tokens.NewRedisStore(tokens.RedisConfig{Client: c})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
	}
}

// start is near the real time because Redis expires keys on its own clock.
func testStart() time.Time { return time.Now().Truncate(time.Second) }

func TestStoreConformance(t *testing.T) {
	for _, f := range storeFactories() {
		t.Run(f.name, func(t *testing.T) {
			ctx := context.Background()
			ks := keySet(t, edKey(t))
			manager := func(t *testing.T, s tokens.Store, clk *testclock.Clock, grace time.Duration) *tokens.Manager {
				return newManager(t, tokens.Config{Keys: ks, Store: s, Now: clk.Now, RefreshGrace: grace})
			}

			t.Run("issue and verify", func(t *testing.T) {
				clk := testclock.New(testStart())
				m := manager(t, f.open(t)(), clk, 0)
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
				if p.ExpiresIn(clk.Now()) != 900 {
					t.Fatalf("expires_in = %d, want 900", p.ExpiresIn(clk.Now()))
				}
			})

			t.Run("rotation and reuse revokes the family", func(t *testing.T) {
				clk := testclock.New(testStart())
				m := manager(t, f.open(t)(), clk, -1) // no grace
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
				m := manager(t, f.open(t)(), clk, -1)
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
				m := manager(t, f.open(t)(), clk, 5*time.Second)
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
				if jti(t, p1.RefreshToken) != jti(t, p2.RefreshToken) {
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
				m := manager(t, f.open(t)(), clk, 5*time.Second)
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
				m := manager(t, f.open(t)(), clk, 5*time.Second)
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
							jtis[i] = jti(t, p.RefreshToken)
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
				m := manager(t, f.open(t)(), clk, 0)
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
				m := manager(t, f.open(t)(), clk, 0)
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
				m1 := manager(t, f.open(t)(), clk, 0)
				p, _ := m1.Issue(ctx, "user-9")
				m2 := manager(t, f.open(t)(), clk, 0) // a different, empty store
				if _, err := m2.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrUnknownFamily) {
					t.Fatalf("err = %v, want ErrUnknownFamily", err)
				}
			})

			if f.persistent {
				t.Run("survives reopen", func(t *testing.T) {
					clk := testclock.New(testStart())
					reopen := f.open(t)
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
				s := f.open(t)()
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
				if !f.selfExpiring && n != 2 { // the revocation and the family
					t.Fatalf("cleanup after expiry removed %d, want 2", n)
				}
			})
		})
	}
}

func TestRedisKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: c})
	clk := testclock.New(testStart())
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: s, Now: clk.Now})
	ctx := context.Background()
	p, _ := m.Issue(ctx, "u")
	if err := m.Revoke(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "levqor:tok:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %v, err %v; want the family and one revocation", keys, err)
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > tokens.DefaultRefreshTTL+time.Minute {
			t.Fatalf("key %s has TTL %v (err %v): must expire with its token", k, ttl, err)
		}
	}
}

func TestRedisStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: c})
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: s})
	ctx := context.Background()
	p, err := m.Issue(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrStore) {
		t.Fatalf("verify with Redis down: err = %v, want ErrStore", err)
	}
	if _, err := m.Refresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrStore) {
		t.Fatalf("refresh with Redis down: err = %v, want ErrStore", err)
	}
}

func TestSQLStoreConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := tokens.NewSQLStore(ctx, tokens.SQLConfig{}); err == nil {
		t.Fatal("nil DB accepted")
	}
	db := sqlitetest.Open(t, sqlitetest.Path(t))
	if _, err := tokens.NewSQLStore(ctx, tokens.SQLConfig{DB: db, TablePrefix: "x; DROP TABLE y"}); err == nil {
		t.Fatal("unsafe table prefix accepted")
	}
	if _, err := tokens.NewSQLStore(ctx, tokens.SQLConfig{DB: db, TablePrefix: "app_"}); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.QueryRow(`SELECT name FROM sqlite_master WHERE name = 'app_token_families'`).Scan(&name); err != nil {
		t.Fatalf("prefixed table missing: %v", err)
	}
}

func jti(t *testing.T, token string) string {
	t.Helper()
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}
