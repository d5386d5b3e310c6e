package tokens

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrDataLost reports that the Redis behind a RedisStore lost its data
// (restarted without persistence, flushed, failed over to an empty node):
// every revocation and refresh family written before is gone. Tokens issued
// before are then refused (Revoked treats a missing family as revoked), so
// users log in again; the error is for the operator's alert.
var ErrDataLost = errors.New("tokens: Redis lost the token store's data; tokens issued before are refused and users must log in again")

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// maxMarkerTags bounds the search for a hash tag landing on each master.
const maxMarkerTags = 4096

// CheckData tells whether Redis still holds the data it held at the
// previous call. The first call writes a marker (a random value, kept
// without expiry) on the Redis node, or on every master of a Redis
// Cluster, and remembers it; every later call reads the markers back and
// returns an error wrapping ErrDataLost when one is missing or was
// replaced, naming the node. It then writes a fresh marker, so one loss is
// reported once per process. Replicas sharing the Redis share the markers.
//
// Call it periodically (levqor-server does every
// LEVQOR_REDIS_CHECK_INTERVAL) and alert on ErrDataLost. Revocations stay
// safe without it; it only makes the loss visible. A maxmemory policy that
// evicts keys without a TTL (allkeys-*) can evict a marker and raise a
// false alarm; use a volatile-* policy or noeviction.
func (s *RedisStore) CheckData(ctx context.Context) error {
	keys, err := s.markerKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: data check: %w", err)
	}
	s.markerMu.Lock()
	defer s.markerMu.Unlock()
	if s.markers == nil {
		s.markers = map[string]string{}
	}
	var lost []string
	var failed error
	for _, k := range keys {
		want, seen := s.markers[k.key]
		got, err := s.c.Get(ctx, k.key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			failed = cmp.Or(failed, err) // check the other nodes: a loss seen there must not be forgotten
			continue
		}
		if seen && got != want {
			lost = append(lost, k.node)
		}
		if got == "" {
			if got, err = s.writeMarker(ctx, k.key); err != nil {
				failed = cmp.Or(failed, err)
				if seen {
					s.markers[k.key] = "" // reported now; any value read later is a change
				}
				continue
			}
		}
		s.markers[k.key] = got
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w (node %s)", ErrDataLost, strings.Join(lost, ", "))
	}
	if failed != nil {
		return fmt.Errorf("tokens: data check: %w", failed)
	}
	return nil
}

// writeMarker sets key to a fresh random value unless another process set
// it first, and returns the value now stored.
func (s *RedisStore) writeMarker(ctx context.Context, key string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if err := s.c.SetNX(ctx, key, base64.RawURLEncoding.EncodeToString(b[:]), 0).Err(); err != nil {
		return "", err
	}
	return s.c.Get(ctx, key).Result()
}

type markerKey struct{ key, node string }

// markerKeys is one key on a single Redis, or one key per master of a
// cluster: a hash tag is searched whose slot that master serves, so a
// master that restarts empty loses its own marker.
func (s *RedisStore) markerKeys(ctx context.Context) ([]markerKey, error) {
	base := s.prefix + "marker"
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return []markerKey{{key: base, node: "redis"}}, nil
	}
	//lint:ignore SA1019 CLUSTER SHARDS needs Redis 7; CLUSTER SLOTS answers on every cluster version
	ranges, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []markerKey
	covered := map[string]bool{}
	for i := 0; i < maxMarkerTags && len(covered) < countMasters(ranges); i++ {
		tag := "m" + strconv.Itoa(i)
		slot := int(crc16([]byte(tag)) % clusterSlots)
		for _, r := range ranges {
			if r.Start <= slot && slot <= r.End && len(r.Nodes) > 0 && !covered[r.Nodes[0].Addr] {
				covered[r.Nodes[0].Addr] = true
				out = append(out, markerKey{key: base + ":{" + tag + "}", node: r.Nodes[0].Addr})
			}
		}
	}
	return out, nil
}

func countMasters(ranges []redis.ClusterSlot) int {
	m := map[string]bool{}
	for _, r := range ranges {
		if len(r.Nodes) > 0 {
			m[r.Nodes[0].Addr] = true
		}
	}
	return len(m)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots
// with (slot = crc16(tag) mod 16384).
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
