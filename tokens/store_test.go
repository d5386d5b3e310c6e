package tokens_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
	"github.com/levqor/levqor/tokens/tokenstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStoreConformance runs the published suite on every store.
func TestStoreConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{}, func(t *testing.T) func() tokens.Store {
			s := memStore(t)
			return func() tokens.Store { return s }
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{Persistent: true}, func(t *testing.T) func() tokens.Store {
			path := sqlitetest.Path(t)
			return func() tokens.Store {
				db := sqlitetest.Open(t, path)
				s, err := tokens.NewSQLStore(context.Background(), tokens.SQLConfig{DB: db})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		})
	})
	t.Run("postgres", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{Persistent: true}, func(t *testing.T) func() tokens.Store {
			url := pgtest.NewDatabase(t)
			return func() tokens.Store {
				db, err := sql.Open("pgx", url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				s, err := tokens.NewSQLStore(context.Background(), tokens.SQLConfig{DB: db})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		})
	})
	t.Run("redis", func(t *testing.T) {
		tokenstest.Run(t, tokenstest.Options{Persistent: true, SelfExpiring: true}, func(t *testing.T) func() tokens.Store {
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
		})
	})
	t.Run("redis-cluster", func(t *testing.T) {
		cluster := redistest.StartCluster(t) // one cluster; each store its own prefix
		n := 0
		tokenstest.Run(t, tokenstest.Options{Persistent: true, SelfExpiring: true}, func(t *testing.T) func() tokens.Store {
			n++
			prefix := fmt.Sprintf("conformance%d:", n)
			return func() tokens.Store {
				s, err := tokens.NewRedisStore(tokens.RedisConfig{Client: cluster.Client(), Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		})
	})
}

// start is near the real time because Redis expires keys on its own clock.
func testStart() time.Time { return time.Now().Truncate(time.Second) }

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
