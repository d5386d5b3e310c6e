package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
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
	// DeniedKeys is how many keys found denied the limiter remembers,
	// with the time each allows again: until then their requests are
	// denied without a round trip, the answer Redis would give (a key's
	// budget only shrinks while it is denied, whatever other replicas
	// decide). An operator who deletes a key in Redis to lift its limit
	// early lifts it for replicas that have not remembered it only. Keys
	// are held as 64-bit hashes, a fixed size whatever their length.
	// Default DefaultRedisDeniedKeys (10,000); negative: none.
	DeniedKeys int
}

// Redis is a GCRA limiter whose state lives in Redis, shared by every
// replica. Decisions are exact and atomic: each key's are taken by one Lua
// script on that key alone (Redis Cluster safe), which expires at most two
// burst windows (and at most two minutes) after the key's burst is full
// again, and the limiter takes exactly the decisions Memory takes for the
// same requests at the same times.
//
// A key found denied is remembered until it allows again (up to
// DeniedKeys keys), and its requests meanwhile are denied here, with the
// figures Redis would give, without a round trip: traffic that keeps
// hitting a spent limit costs Redis one request per key and wait on each
// replica, not one per request. The wait is timed on this
// process's monotonic clock from before the request that found the key
// denied was sent, so it never outlasts Redis's.
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
	interval int64  // µs
	tau      int64  // burst window, µs
	rateArg  []byte // interval and tau, as the script reads them
	oneArgs  []any  // scriptArgs(1, ""), built once
	prefix   string
	maxBatch int
	// now replaces Redis TIME in tests only (export_test.go): in use the
	// script reads the Redis server's clock, so replicas with skewed clocks
	// agree.
	now func() time.Time
	// denied remembers keys found denied (nil: none), on clock's time.
	denied *deniedKeys
	epoch  time.Time

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
	_ Limiter    = (*Redis)(nil)
	_ io.Closer  = (*Redis)(nil)
	_ rememberer = (*Redis)(nil)
)

// gcraScript mirrors gcra() for n requests on one key at one instant, in
// order, and stores the key once. Lua numbers are float64: every value is
// an integer number of microseconds below 2^53, so the arithmetic is
// exact. KEYS[1]: the key. ARGV[1]: interval µs, burst window (burst ×
// interval) µs and n, as little-endian 64-bit integers (Redis.scriptArgs);
// ARGV[2], in tests only: now µs, the same way (absent: Redis TIME). Reply: for
// each request, the time until the key is back to a full burst (reset, µs)
// if it was allowed and -reset-1 if not — one integer when n is 1, else an
// array; the rest of a Result follows from it (Redis.result).
//
// A serial caller waits for Redis's time per call, so the script does the
// least it can for exact GCRA on the server's clock: three commands (TIME,
// GET, SET; a denial writes nothing), and numbers travel as 8-byte binary,
// which struct reads and writes without the decimal conversions (strtod,
// printf) that cost a quarter to a third of the script's time.
//
// The key holds the theoretical arrival time (TAT), 8 bytes (a decimal
// value, as versions before 2026-11-26 wrote, is still read). Time is cut
// into spans of one burst window, or one minute if that is shorter,
// counted from the epoch; the key expires at the end of the span after the
// one holding its TAT, so it outlives the TAT by one to two spans (at most
// two minutes). Its expiry is set only when the TAT enters another span:
// otherwise SET keeps it (KEEPTTL), which costs Redis less than PX.
var gcraScript = redis.NewScript(`
local struct = rawget(_G, 'struct') -- absent from miniredis
local decode, encode
if struct then
  decode, encode = struct.unpack, struct.pack
else -- the same encoding in plain Lua
  local function le(s, i)
    local b1, b2, b3, b4, b5, b6, b7 = string.byte(s, i, i + 6)
    return b1 + 256 * (b2 + 256 * (b3 + 256 * (b4 + 256 * (b5 + 256 * (b6 + 256 * b7)))))
  end
  decode = function(_, s)
    if #s == 8 then return le(s, 1) end
    return le(s, 1), le(s, 9), le(s, 17)
  end
  encode = function(_, x)
    local b = {}
    for i = 1, 8 do b[i] = x % 256; x = (x - b[i]) / 256 end
    return string.char(unpack(b))
  end
end
local interval, tau, n = decode('<i8i8i8', ARGV[1])
local now
if ARGV[2] then
  now = decode('<i8', ARGV[2])
else
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local v = redis.call('GET', KEYS[1])
local stored
if v then
  if #v == 8 then stored = decode('<i8', v) else stored = tonumber(v) end
end
local tat = stored
if not tat or tat < now then tat = now end
local start = tat
local limit = now + tau
local one, out
if n > 1 then out = {} end
for i = 1, n do
  local newTat = tat + interval
  if newTat > limit then
    one = now - tat - 1
  else
    tat = newTat
    one = tat - now
  end
  if out then out[i] = one end
end
if tat > start then
  local span = tau
  if span > 60000000 then span = 60000000 end
  local cell = tat - tat % span
  if stored and cell == stored - stored % span then
    redis.call('SET', KEYS[1], encode('<i8', tat), 'KEEPTTL')
  else
    redis.call('SET', KEYS[1], encode('<i8', tat), 'PX', math.ceil((cell + 2 * span - now) / 1000))
  end
end
return out or one
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
	if cfg.DeniedKeys == 0 {
		cfg.DeniedKeys = DefaultRedisDeniedKeys
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
	l := &Redis{
		c: cfg.Client, rate: rate, prefix: cfg.Prefix, maxBatch: cfg.MaxBatch,
		interval: interval, tau: tau,
		queue: make(chan *redisReq, 4096),
		slots: make(chan struct{}, cfg.Pipelines),
		epoch: time.Now(),
	}
	if cfg.DeniedKeys > 0 {
		l.denied = newDeniedKeys(cfg.DeniedKeys, tau-interval)
	}
	l.rateArg = binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(interval)), uint64(tau))
	l.oneArgs = l.scriptArgs(1, "")
	return l, nil
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
	if res, ok := l.remembered(key); ok {
		return res, nil
	}
	return l.ask(ctx, key)
}

// ask is Allow without the remembered denials: it asks Redis.
func (l *Redis) ask(ctx context.Context, key string) (Result, error) {
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

// remembered answers a request on a key remembered as denied, without a
// round trip, with the figures Redis would give; ok is false otherwise,
// and once the limiter is closed.
func (l *Redis) remembered(key string) (res Result, ok bool) {
	if l.denied == nil || l.closed.Load() {
		return Result{}, false
	}
	now := l.clock()
	tat, ok := l.denied.lookup(key, now)
	if !ok {
		return Result{}, false
	}
	return l.result(now - tat - 1), true // a denial's reply (see gcraScript)
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
	var v [1]int64
	sent := l.clock()
	if err := replyValues(gcraScript.Run(ctx, l.c, []string{l.prefix + key}, l.scriptArgs(1, l.nowArg(sent))...), v[:]); err != nil {
		return Result{}, err
	}
	return l.decided(key, v[0], sent), nil
}

// decided is the Result of one decision on key, sent at sent (clock); a
// denial is remembered until the key allows again.
func (l *Redis) decided(key string, v, sent int64) Result {
	if v <= 0 && l.denied != nil {
		l.denied.add(key, sent-v-1, sent) // the TAT: sent + reset
	}
	return l.result(v)
}

// replyValues reads a script reply deciding len(dst) requests into dst:
// one integer for one request, else an array.
func replyValues(cmd *redis.Cmd, dst []int64) error {
	reply, err := cmd.Result()
	if err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	switch v := reply.(type) {
	case int64:
		if len(dst) == 1 {
			dst[0] = v
			return nil
		}
	case []any:
		if len(v) == len(dst) && len(dst) > 1 {
			for i, x := range v {
				n, ok := x.(int64)
				if !ok {
					return fmt.Errorf("ratelimit: redis: unexpected script reply value %T", x)
				}
				dst[i] = n
			}
			return nil
		}
	}
	return fmt.Errorf("ratelimit: redis: unexpected script reply %T for %d requests", reply, len(dst))
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

// scriptArgs are gcraScript's arguments for n requests at now (a nowArg);
// one request on Redis TIME, the common case, reuses one slice.
func (l *Redis) scriptArgs(n int, now string) []any {
	if n == 1 && now == "" && l.oneArgs != nil {
		return l.oneArgs
	}
	a := binary.LittleEndian.AppendUint64(append(make([]byte, 0, 24), l.rateArg...), uint64(n))
	if now == "" {
		return []any{string(a)}
	}
	return []any{string(a), now}
}

// clock is the limiter's own time in µs: the injected clock's Unix time
// in tests, else the monotonic time since NewRedis. It times remembered
// denials; the decisions themselves use Redis TIME.
func (l *Redis) clock() int64 {
	if l.now != nil {
		return l.now().UnixMicro()
	}
	return time.Since(l.epoch).Microseconds()
}

// nowArg is the script's clock argument for a request sent at sent: ""
// for Redis TIME, the injected clock's time in tests.
func (l *Redis) nowArg(sent int64) string {
	if l.now == nil {
		return ""
	}
	return string(binary.LittleEndian.AppendUint64(nil, uint64(sent)))
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
	sent := l.clock()
	replies := l.exec(ctx, keys, byKey, l.nowArg(sent))
	for i, k := range keys {
		reqs := byKey[k]
		v := make([]int64, len(reqs))
		err := replyValues(replies[i], v)
		for j, r := range reqs {
			if err != nil {
				r.err = err
			} else {
				r.res = l.decided(k, v[j], sent)
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
				cmds[i] = gcraScript.EvalSha(ctx, pipe, []string{l.prefix + k}, l.scriptArgs(len(byKey[k]), now)...)
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
