package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/redistest"
)

// TestCluster checks the test cluster is a real one: keys spread over the
// three masters, a stopped master takes the cluster down, and a restarted
// master rejoins empty.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	cl := c.Client()

	owners := map[int]bool{}
	for i := range 30 {
		k := fmt.Sprintf("k%d", i)
		if err := cl.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		owners[c.NodeFor(k)] = true
	}
	if len(owners) != 3 {
		t.Fatalf("30 keys landed on %d masters, want 3", len(owners))
	}
	if err := cl.MSet(ctx, "a", 1, "b", 2).Err(); err == nil || !isCrossSlot(err) {
		t.Fatalf("MSET across slots: err = %v, want CROSSSLOT (is this really a cluster?)", err)
	}

	victim := c.NodeFor("k0")
	c.Node(victim).Stop()
	c.WaitFailed()
	if err := cl.Get(ctx, "k0").Err(); err == nil {
		t.Fatal("GET on a stopped master's slot succeeded")
	}
	c.Node(victim).Restart()
	c.WaitHealthy()
	if err := cl.Get(ctx, "k0").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k0 after the master restarted without persistence: err = %v, want redis.Nil", err)
	}
}

func isCrossSlot(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "CROSSSLOT")
}
