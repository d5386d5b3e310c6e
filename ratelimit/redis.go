package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix prefixes every key the Redis limiter writes.
const DefaultRedisPrefix = "levqor:rl:"

// Defaults of RedisConfig's batching.
const (
	// DefaultRedisPipelines is how many batches may be in flight at once.
	DefaultRedisPipelines = 4
	// DefaultRedisMaxBatch caps the decisions sent in one round trip.
	DefaultRedisMaxBatch = 256
)

// ErrClosed is returned by a limiter used after Close.
var ErrClosed = errors.New("ratelimit: limiter closed")

// RedisConfig configures a Redis limiter.
type RedisConfig struct {
	// Client is a Redis, Redis Cluster or Sentinel client. Required; the
	// limiter never closes it.
	Client redis.UniversalClient
	// Rate is the policy. Zero fields take the Rate defaults (60/min, burst 60).
	Rate Rate
	// Prefix prefixes every key. Default DefaultRedisPrefix.
	Prefix string
	// Pipelines is how many round trips may be in flight at once; the
	// requests that arrive meanwhile wait for the next one. Default
	// DefaultRedisPipelines (4).
	Pipelines int
	// MaxBatch caps the decisions sent in one round trip. Default
	// DefaultRedisMaxBatch (256).
	MaxBatch int
}

// Redis is a GCRA limiter whose state lives in Redis, shared by every
// replica. Decisions are exact and atomic: each key's are taken by one Lua
// script on that key alone (Redis Cluster safe), which expires at most two
// burst windows (and at most two minutes) after the key's burst is full
// again, and the limiter takes exactly the decisions Memory takes for the
// same requests at the same times.
//
// Requests are batched without goroutines of their own: a caller that
// finds fewer than Pipelines round trips in flight sends its request at
// once, together with every request queued meanwhile; the others queue,
// and one of them sends the next batch when a round trip ends. A batch is
// one pipeline, one EVALSHA per distinct key deciding that key's requests
// in order; calls refused with NOSCRIPT are sent again once the script is
// loaded, and only those. A lone request is one plain EVALSHA (EVAL after
// a NOSCRIPT); under load, many decisions share one round trip.
type Redis struct {
	c        redis.UniversalClient
	rate     Rate
	interval int64 // µs
	tau      int64 // burst window, µs
	// the script's first two arguments, formatted once
	intervalArg, tauArg string
	prefix              string
	maxBatch            int
	// now replaces Redis TIME in tests only (export_test.go): in use the
	// script reads the Redis server's clock, so replicas with skewed clocks
	// agree.
	now func() time.Time

	queue  chan *redisReq // requests waiting for a round trip
	slots  chan struct{}  // one token per round trip in flight
	closed atomic.Bool
}

type redisReq struct {
	ctx   context.Context
	key   string
	taken atomic.Bool // dequeued into a batch: that batch completes it
	res   Result
	err   error
	done  chan struct{}
}

var (
	_ Limiter   = (*Redis)(nil)
	_ io.Closer = (*Redis)(nil)
)

// gcraScript mirrors gcra() for ARGV[4] requests on one key at one
// instant, in order, and stores the key once. Lua numbers are float64:
// every value is an integer number of microseconds below 2^53, so the
// arithmetic is exact. KEYS[1]: the key. ARGV: interval µs, burst window
// (burst × interval) µs, now µs or "" for Redis TIME, number of requests.
// Reply: one value per request, the time until the key is back to a full
// burst (reset, µs) if it was allowed and -reset-1 if not; the rest of a
// Result follows from it (Redis.result). One small value instead of four
// keeps the script and its reply short: Redis's time per call is what a
// serial caller waits for.
//
// The key holds the theoretical arrival time (TAT). Time is cut into
// spans of one burst window, or one minute if that is shorter, counted
// from the epoch; the key expires at the end of the span after the one
// holding its TAT, so it outlives the TAT by one to two spans (at most two
// minutes) and its expiry moves only when the TAT enters another span. A
// key that exists is moved to its new TAT in place (INCRBY by the
// difference, PEXPIRE only on entering a span), which costs Redis less
// than SET with PX; only a missing key is SET.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(ARGV[3])
end
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = stored
if tat == nil or tat < now then tat = now end
local start = tat
local limit = now + tau
local out = {}
for i = 1, n do
  local newTat = tat + interval
  if newTat > limit then
    out[i] = now - tat - 1
  else
    tat = newTat
    out[i] = tat - now
  end
end
if tat > start then
  local span = tau
  if span > 60000000 then span = 60000000 end
  local cell = math.floor(tat / span)
  local life = math.ceil(((cell + 2) * span - now) / 1000)
  if stored == nil then
    redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', life)
  else
    redis.call('INCRBY', KEYS[1], tat - stored)
    if cell ~= math.floor(stored / span) then
      redis.call('PEXPIRE', KEYS[1], life)
    end
  end
end
return out
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
	if cfg.Pipelines < 0 || cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("ratelimit: RedisConfig.Pipelines and MaxBatch must not be negative")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.Pipelines == 0 {
		cfg.Pipelines = DefaultRedisPipelines
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultRedisMaxBatch
	}
	interval := rate.interval()
	tau := interval * int64(rate.Burst)
	return &Redis{
		c: cfg.Client, rate: rate, prefix: cfg.Prefix, maxBatch: cfg.MaxBatch,
		interval: interval, tau: tau,
		intervalArg: strconv.FormatInt(interval, 10),
		tauArg:      strconv.FormatInt(tau, 10),
		queue:       make(chan *redisReq, 4096),
		slots:       make(chan struct{}, cfg.Pipelines),
	}, nil
}

// Rate implements Limiter.
func (l *Redis) Rate() Rate { return l.rate }

// Close implements io.Closer: later calls fail with ErrClosed. The limiter
// runs no goroutine of its own and the client stays open. It is safe to
// call more than once.
func (l *Redis) Close() error {
	l.closed.Store(true)
	return nil
}

// Allow implements Limiter. A caller whose ctx ends while its request is
// queued or in flight gets ctx.Err(); the decision may still have been
// taken in Redis.
func (l *Redis) Allow(ctx context.Context, key string) (Result, error) {
	if l.closed.Load() {
		return Result{}, ErrClosed
	}
	select {
	case l.slots <- struct{}{}: // a round trip is free: send now
		res, err := l.lead(ctx, key)
		<-l.slots
		return res, err
	default:
	}
	r := &redisReq{ctx: ctx, key: key, done: make(chan struct{})}
	select {
	case l.queue <- r:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	for {
		select {
		case <-r.done:
			return r.res, r.err
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case l.slots <- struct{}{}:
			if !r.taken.Load() {
				if batch := l.fill(nil); len(batch) > 0 {
					l.send(batch)
				}
			}
			<-l.slots
			if r.taken.Load() {
				select { // in a batch: it completes
				case <-r.done:
					return r.res, r.err
				case <-ctx.Done():
					return Result{}, ctx.Err()
				}
			}
		}
	}
}

// lead decides key with the requests queued meanwhile, holding a round
// trip. Alone, it is one plain script call: no pipeline, no batch.
func (l *Redis) lead(ctx context.Context, key string) (Result, error) {
	batch := l.fill(nil)
	if len(batch) > 0 {
		r := &redisReq{ctx: ctx, key: key, done: make(chan struct{})}
		r.taken.Store(true)
		l.send(append(batch, r))
		return r.res, r.err
	}
	v, err := replyValues(gcraScript.Run(ctx, l.c, []string{l.prefix + key}, l.intervalArg, l.tauArg, l.nowArg(), 1), 1)
	if err != nil {
		return Result{}, err
	}
	return l.result(v[0]), nil
}

// replyValues reads a script reply deciding n requests: one value each.
func replyValues(cmd *redis.Cmd, n int) ([]int64, error) {
	v, err := cmd.Int64Slice()
	if err == nil && len(v) != n {
		err = fmt.Errorf("unexpected script reply of %d values for %d requests", len(v), n)
	}
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return v, nil
}

// result reads one decision of a script reply: reset µs if allowed,
// -reset-1 if not (see gcraScript); the figures are gcra()'s.
func (l *Redis) result(v int64) Result {
	if v > 0 {
		return Result{
			Allowed:    true,
			Limit:      l.rate.Burst,
			Remaining:  int((l.tau - v) / l.interval),
			ResetAfter: time.Duration(v) * time.Microsecond,
		}
	}
	reset := -v - 1
	return Result{
		Limit:      l.rate.Burst,
		RetryAfter: time.Duration(reset+l.interval-l.tau) * time.Microsecond,
		ResetAfter: time.Duration(reset) * time.Microsecond,
	}
}

// nowArg is the script's clock argument: "" for Redis TIME.
func (l *Redis) nowArg() string {
	if l.now == nil {
		return ""
	}
	return strconv.FormatInt(l.now().UnixMicro(), 10)
}

// fill adds queued requests to batch, up to MaxBatch.
func (l *Redis) fill(batch []*redisReq) []*redisReq {
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.queue:
			r.taken.Store(true)
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// send decides a batch: one script call per distinct key, all in one
// pipeline, and completes every request.
func (l *Redis) send(batch []*redisReq) {
	byKey := make(map[string][]*redisReq, len(batch))
	var keys []string
	// The round trip ends at the latest of the callers' deadlines (none if
	// one has none): a caller giving up early must not fail the others.
	var deadline time.Time
	bounded := true
	for _, r := range batch {
		if _, ok := byKey[r.key]; !ok {
			keys = append(keys, r.key)
		}
		byKey[r.key] = append(byKey[r.key], r)
		dl, ok := r.ctx.Deadline()
		bounded = bounded && ok
		if ok && dl.After(deadline) {
			deadline = dl
		}
	}
	ctx := context.Background()
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	replies := l.exec(ctx, keys, byKey, l.nowArg())
	for i, k := range keys {
		reqs := byKey[k]
		v, err := replyValues(replies[i], len(reqs))
		for j, r := range reqs {
			if err != nil {
				r.err = err
			} else {
				r.res = l.result(v[j])
			}
			close(r.done)
		}
	}
}

// exec runs one EVALSHA per key in a pipeline; each call carries its own
// reply or error. Calls refused with NOSCRIPT did not run: exec loads the
// script and sends those again, and only those — in a cluster one node
// may know the script and another not, and the calls that ran there must
// not decide twice.
func (l *Redis) exec(ctx context.Context, keys []string, byKey map[string][]*redisReq, now string) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(keys))
	run := func(refusedOnly bool) {
		pipe := l.c.Pipeline()
		for i, k := range keys {
			if !refusedOnly || isNoScript(cmds[i]) {
				cmds[i] = gcraScript.EvalSha(ctx, pipe, []string{l.prefix + k}, l.intervalArg, l.tauArg, now, len(byKey[k]))
			}
		}
		_, _ = pipe.Exec(ctx) // the errors are the calls'
	}
	run(false)
	if !slices.ContainsFunc(cmds, isNoScript) {
		return cmds
	}
	if err := gcraScript.Load(ctx, l.c).Err(); err != nil {
		for _, c := range cmds {
			if isNoScript(c) {
				c.SetErr(err)
			}
		}
		return cmds
	}
	run(true)
	return cmds
}

func isNoScript(c *redis.Cmd) bool {
	err := c.Err()
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
