package ratelimit

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix prefixes every key the Redis limiter writes.
const DefaultRedisPrefix = "levqor:rl:"

// RedisConfig configures a Redis limiter.
type RedisConfig struct {
	// Client is a Redis, Redis Cluster or Sentinel client. Required; the
	// limiter never closes it.
	Client redis.UniversalClient
	// Rate is the policy. Zero fields take the Rate defaults (60/min, burst 60).
	Rate Rate
	// Prefix prefixes every key. Default DefaultRedisPrefix.
	Prefix string
}

// Redis is a GCRA limiter whose state lives in Redis, shared by every
// replica. Each decision is one EVALSHA round trip (EVAL after a NOSCRIPT),
// atomic, on a single key (Redis Cluster safe) that expires once the key's
// burst is full again. It takes exactly the decisions Memory takes for the
// same requests at the same times.
type Redis struct {
	c        redis.UniversalClient
	rate     Rate
	interval string
	burst    string
	prefix   string
	// now replaces Redis TIME in tests only (export_test.go): in use the
	// script reads the Redis server's clock, so replicas with skewed clocks
	// agree.
	now func() time.Time
}

var (
	_ Limiter   = (*Redis)(nil)
	_ io.Closer = (*Redis)(nil)
)

// gcraScript mirrors gcra(). Lua numbers are float64: every value is an
// integer number of microseconds below 2^53, so the arithmetic is exact.
// KEYS[1]: the key. ARGV: interval µs, burst, now µs or "" for Redis TIME.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local newTat = tat + interval
local allowAt = newTat - burst * interval
if now < allowAt then
  return {0, 0, allowAt - now, tat - now}
end
local ttl = newTat - now
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', math.ceil(ttl / 1000))
return {1, math.floor((burst * interval - ttl) / interval), 0, ttl}
`)

// NewRedis validates cfg. It does not contact Redis.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("ratelimit: RedisConfig.Client is required")
	}
	rate := cfg.Rate.withDefaults()
	if err := rate.validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	return &Redis{
		c: cfg.Client, rate: rate, prefix: cfg.Prefix,
		interval: strconv.FormatInt(rate.interval(), 10),
		burst:    strconv.Itoa(rate.Burst),
	}, nil
}

// Rate implements Limiter.
func (l *Redis) Rate() Rate { return l.rate }

// Close implements io.Closer. The limiter holds nothing of its own (the
// client is the caller's, and stays open); Close exists so every limiter
// is closed the same way.
func (l *Redis) Close() error { return nil }

// Allow implements Limiter.
func (l *Redis) Allow(ctx context.Context, key string) (Result, error) {
	now := ""
	if l.now != nil {
		now = strconv.FormatInt(l.now().UnixMicro(), 10)
	}
	v, err := gcraScript.Run(ctx, l.c, []string{l.prefix + key}, l.interval, l.burst, now).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("ratelimit: redis: unexpected script reply %v", v)
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      l.rate.Burst,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		ResetAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}
