package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of test clusters: how long
// a master may be unreachable before the others mark it failed (and, with
// no replicas, the cluster stops serving).
const ClusterNodeTimeout = time.Second

// clusterTimeout bounds how long a cluster may take to report
// cluster_state:ok after creation or a node's restart.
const clusterTimeout = 30 * time.Second

// Cluster is a Redis Cluster of three masters (no replicas) on loopback,
// owned by one test. Each node runs without persistence, like Start: a
// node restarted after Stop keeps its identity and slots (nodes.conf) but
// comes back empty, as a master without persistence does in production.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// StartCluster runs three redis-server processes in cluster mode, joins
// them with redis-cli --cluster create (5461/5461/5462 slots) and waits for
// cluster_state:ok. The cluster stops when the test ends. Without
// redis-server and redis-cli on PATH the test is skipped, unless CI=true,
// where that is a failure: miniredis cannot stand in for a cluster.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	cli, cliErr := exec.LookPath("redis-cli")
	if err == nil {
		err = cliErr
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redistest: a cluster needs redis-server and redis-cli on PATH (CI=true): %v", err)
		}
		t.Skipf("redistest: a cluster needs redis-server and redis-cli on PATH: %v", err)
	}
	c := &Cluster{t: t}
	dir := t.TempDir()
	for i := range 3 {
		port, err := clusterPort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s := &Server{t: t, bin: bin, port: port, extra: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
		}}
		if err := s.start(); err != nil {
			t.Fatalf("redistest: cluster node %d: %v", i, err)
		}
		t.Cleanup(s.Stop)
		c.nodes = append(c.nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy()
	return c
}

// clusterPort finds a port p such that p and its cluster bus port p+10000
// are both free on loopback.
func clusterPort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(35000)
		if portFree(p) && portFree(p+10000) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port pair (p, p+10000) for a cluster node")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// Addrs lists the nodes' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL is a redis:// URL naming every node with addr= parameters, the form
// redis.ParseClusterURL (and levqor-server's LEVQOR_REDIS_URL) reads.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

// Client returns a cluster client for the nodes, closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Node returns node i (0, 1 or 2) to stop, freeze or restart it.
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// NodeFor returns the index of the node serving key's hash slot.
func (c *Cluster) NodeFor(key string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := redis.NewClient(&redis.Options{Addr: c.running().Addr()})
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT: %v", err)
	}
	//lint:ignore SA1019 CLUSTER SHARDS needs Redis 7; CLUSTER SLOTS answers on every cluster version
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			for i, n := range c.nodes {
				if n.Addr() == r.Nodes[0].Addr {
					return i
				}
			}
		}
	}
	c.t.Fatalf("redistest: no node serves slot %d", slot)
	return -1
}

func (c *Cluster) running() *Server {
	for _, n := range c.nodes {
		n.mu.Lock()
		up := n.cmd != nil
		n.mu.Unlock()
		if up {
			return n
		}
	}
	c.t.Fatalf("redistest: no cluster node is running")
	return nil
}

// WaitHealthy waits until every node reports cluster_state:ok, e.g. after
// Node(i).Restart().
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	var last string
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.nodes {
			if last = clusterState(n.Addr()); last != "ok" {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("redistest: cluster not healthy within %v (last cluster_state: %q)", clusterTimeout, last)
}

// WaitFailed waits until the running nodes report cluster_state:fail, as
// they do ClusterNodeTimeout after a master stops.
func (c *Cluster) WaitFailed() {
	c.t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for time.Now().Before(deadline) {
		if clusterState(c.running().Addr()) == "fail" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("redistest: cluster did not report fail within %v", clusterTimeout)
}

// clusterState is the node's cluster_state ("ok", "fail"), or the error.
func clusterState(addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v
		}
	}
	return "no cluster_state in CLUSTER INFO"
}
