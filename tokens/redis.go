package tokens

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix prefixes every key the RedisStore writes.
const DefaultRedisPrefix = "levqor:tok:"

// RedisConfig configures a RedisStore.
type RedisConfig struct {
	// Client is a Redis, Redis Cluster or Sentinel client. Required; the
	// store never closes it.
	Client redis.UniversalClient
	// Prefix prefixes every key. Default DefaultRedisPrefix.
	Prefix string
}

// RedisStore is a Store in Redis, shared by every replica. Every key expires
// with the tokens it describes, so no cleanup is needed. All keys of one
// family share a hash tag ({family}), so multi-key operations stay in one
// Redis Cluster slot.
//
// Keys: <prefix>{fid} (hash: cur, prev, ret), <prefix>{fid}:revoked,
// <prefix>{fid}:j:<jti> (one revoked token), and the data-loss markers of
// CheckData (<prefix>marker, or <prefix>marker:{mN} on a cluster).
//
// Without persistence, a Redis restart drops every family: Revoked then
// refuses the tokens issued before (a missing family counts as revoked), so
// logged-out tokens never come back to life; everyone logs in again.
// Configure appendonly yes (appendfsync everysec or always) to keep
// sessions across restarts.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string

	markerMu sync.Mutex        // serialises CheckData
	markers  map[string]string // marker key -> value seen last
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a RedisStore. It does not contact Redis.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("tokens: RedisConfig.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	return &RedisStore{c: cfg.Client, prefix: cfg.Prefix}, nil
}

func (s *RedisStore) familyKey(f string) string  { return s.prefix + "{" + f + "}" }
func (s *RedisStore) revokedKey(f string) string { return s.prefix + "{" + f + "}:revoked" }
func (s *RedisStore) tokenKey(f, jti string) string {
	return s.prefix + "{" + f + "}:j:" + jti
}

// Close implements Store; the caller's client stays open.
func (s *RedisStore) Close() error { return nil }

// CreateFamily implements Store.
func (s *RedisStore) CreateFamily(ctx context.Context, family, subject, jti string, expiresAt time.Time) error {
	k := s.familyKey(family)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "cur", jti, "prev", "", "ret", 0, "sub", subject)
		p.PExpireAt(ctx, k, expiresAt)
		return nil
	})
	return err
}

// rotateScript applies decideRotation atomically inside Redis.
// KEYS: family hash, revoked marker. ARGV: presented, next, now ms, grace ms, expiry ms (unix).
var rotateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {'revoked'} end
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'ret')
if not f[1] then return {'unknown'} end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'ret', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
  return {'advance', ARGV[2]}
end
if f[2] ~= '' and f[2] == ARGV[1] and tonumber(ARGV[3]) < tonumber(f[3]) + tonumber(ARGV[4]) then
  return {'grace', f[1]}
end
redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[5])
return {'reused'}
`)

// Rotate implements Store with one Lua script (EVALSHA, EVAL on NOSCRIPT).
func (s *RedisStore) Rotate(ctx context.Context, r Rotation) (string, error) {
	res, err := rotateScript.Run(ctx, s.c, []string{s.familyKey(r.Family), s.revokedKey(r.Family)},
		r.Presented, r.Next, r.Now.UnixMilli(), r.Grace.Milliseconds(), r.ExpiresAt.UnixMilli()).StringSlice()
	if err != nil {
		return "", err
	}
	switch {
	case len(res) == 2 && (res[0] == "advance" || res[0] == "grace"):
		return res[1], nil
	case len(res) == 1 && res[0] == "revoked":
		return "", ErrRevoked
	case len(res) == 1 && res[0] == "unknown":
		return "", ErrUnknownFamily
	case len(res) == 1 && res[0] == "reused":
		return "", ErrReused
	}
	return "", fmt.Errorf("tokens: unexpected rotate script reply %q", res)
}

// RevokeToken implements Store.
func (s *RedisStore) RevokeToken(ctx context.Context, family, jti string, expiresAt time.Time) error {
	return s.c.SetArgs(ctx, s.tokenKey(family, jti), "1", redis.SetArgs{ExpireAt: expiresAt}).Err()
}

// RevokeFamily implements Store.
func (s *RedisStore) RevokeFamily(ctx context.Context, family string, expiresAt time.Time) error {
	return s.c.SetArgs(ctx, s.revokedKey(family), "1", redis.SetArgs{ExpireAt: expiresAt}).Err()
}

// revokedScript: KEYS: token, family revoked marker, family hash. Revoked
// when either marker exists or the family does not.
var revokedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 1 end
return 1 - redis.call('EXISTS', KEYS[3])
`)

// Revoked implements Store with one script over three keys in one slot.
func (s *RedisStore) Revoked(ctx context.Context, family, jti string) (bool, error) {
	n, err := revokedScript.Run(ctx, s.c, []string{s.tokenKey(family, jti), s.revokedKey(family), s.familyKey(family)}).Int()
	return n == 1, err
}

// CleanupExpired implements Store: Redis expires entries itself.
func (s *RedisStore) CleanupExpired(context.Context, time.Time) (int, error) { return 0, nil }
