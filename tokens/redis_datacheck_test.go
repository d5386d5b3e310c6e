package tokens_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/tokens"
)

// TestRedisDataLoss: Redis restarted without persistence. The tokens
// issued before, including the logged-out one, are all refused (never
// accepted again), CheckData reports the loss once, and logging in again
// works.
func TestRedisDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: c})
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: s})
	ctx := context.Background()
	if err := s.CheckData(ctx); err != nil {
		t.Fatalf("first check: %v", err)
	}
	kept, _ := m.Issue(ctx, "u1")
	loggedOut, _ := m.Issue(ctx, "u2")
	if err := m.Revoke(ctx, loggedOut.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckData(ctx); err != nil {
		t.Fatalf("check before the loss: %v", err)
	}

	srv.Stop()
	srv.Restart() // no persistence: empty

	for name, p := range map[string]tokens.Pair{"kept": kept, "logged out": loggedOut} {
		if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrRevoked) {
			t.Errorf("%s access token after the loss: err = %v, want ErrRevoked", name, err)
		}
		if _, err := m.Refresh(ctx, p.RefreshToken); err == nil {
			t.Errorf("%s refresh token after the loss was exchanged", name)
		}
	}
	err := s.CheckData(ctx)
	if !errors.Is(err, tokens.ErrDataLost) {
		t.Fatalf("check after the loss: err = %v, want ErrDataLost", err)
	}
	if err := s.CheckData(ctx); err != nil {
		t.Fatalf("second check after the loss: %v (a loss is reported once)", err)
	}
	again, err := m.Issue(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, again.AccessToken); err != nil {
		t.Fatalf("new login after the loss: %v", err)
	}
}

// TestRedisClusterDataLoss: one master of three restarts empty. Its
// families are refused, the others' stay valid, and CheckData (one marker
// per master) names that master.
func TestRedisClusterDataLoss(t *testing.T) {
	cluster := redistest.StartCluster(t)
	s, _ := tokens.NewRedisStore(tokens.RedisConfig{Client: cluster.Client()})
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: s})
	ctx := context.Background()
	if err := s.CheckData(ctx); err != nil {
		t.Fatalf("first check: %v", err)
	}
	for i := range 3 {
		n := redis.NewClient(&redis.Options{Addr: cluster.Node(i).Addr()})
		keys, err := n.Keys(ctx, tokens.DefaultRedisPrefix+"marker*").Result()
		n.Close()
		if err != nil || len(keys) != 1 {
			t.Fatalf("node %d holds markers %v (err %v), want exactly one", i, keys, err)
		}
	}
	// Sessions until every node holds at least one family.
	byNode := map[int][]tokens.Pair{}
	for len(byNode) < 3 || len(byNode[0])+len(byNode[1])+len(byNode[2]) < 30 {
		p, err := m.Issue(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		n := cluster.NodeFor(tokens.DefaultRedisPrefix + "{" + p.Family + "}")
		byNode[n] = append(byNode[n], p)
	}
	victim := 1
	cluster.Node(victim).Stop()
	cluster.WaitFailed()
	cluster.Node(victim).Restart()
	cluster.WaitHealthy()

	for n, pairs := range byNode {
		for _, p := range pairs {
			_, err := m.Verify(ctx, p.AccessToken)
			switch {
			case n == victim && !errors.Is(err, tokens.ErrRevoked):
				t.Fatalf("token whose family was on the emptied master: err = %v, want ErrRevoked", err)
			case n != victim && err != nil:
				t.Fatalf("token whose family was on a surviving master: %v", err)
			}
		}
	}
	err := s.CheckData(ctx)
	if !errors.Is(err, tokens.ErrDataLost) || !strings.Contains(err.Error(), cluster.Node(victim).Addr()) {
		t.Fatalf("check after the loss: err = %v, want ErrDataLost naming %s", err, cluster.Node(victim).Addr())
	}
	if err := s.CheckData(ctx); err != nil {
		t.Fatalf("second check: %v", err)
	}
}
