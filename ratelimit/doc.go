// Package ratelimit limits requests per key with the Generic Cell Rate
// Algorithm (GCRA): exact, one timestamp per key, no background refill.
//
// # Quick start
//
//	mem, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60)})
//	defer mem.Close()
//	ip, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: proxies})
//	mw, _ := ratelimit.Middleware(ratelimit.MiddlewareConfig{Limiter: mem, KeyFunc: ratelimit.KeyByIP(ip)})
//	http.ListenAndServe(":8080", mw(mux))
//
// # Design
//
// Three Limiters share one Rate ("Limit per Period, Burst at once"; default
// 60 per minute, burst 60) and take identical decisions:
//
//   - Memory: in-process, sharded by key so parallel callers on different
//     keys do not contend, zero allocations per decision on an existing key,
//     exact under contention (each decision compare-and-swaps the key's entry under its shard's read lock). A key whose
//     burst is full again carries no state; a sweeper goroutine (stopped by
//     Close) drops such keys, and MaxKeys caps the total. Keys are kept as 64-bit
//     hashes: about 46 bytes per key whatever its length
//     (BenchmarkMemoryBytesPerKey), and the caller's strings are never
//     retained.
//   - Redis: shared by replicas; one round trip per decision, or per batch
//     of concurrent decisions (one EVALSHA per key; after NOSCRIPT only
//     the refused calls are sent again, so none decides twice),
//     atomic, on one key (Redis Cluster safe), timed by Redis TIME so
//     skewed app clocks agree; a key expires at most two burst windows,
//     and at most two minutes, after its burst is full again. A key found
//     denied is remembered (RedisConfig.DeniedKeys of them) until it
//     allows again, and denied meanwhile without a round trip: under GCRA
//     a denied key's budget only shrinks, so that is Redis's answer too.
//   - Fallback: Redis first, Memory while Redis errors or times out, with a
//     circuit breaker that probes Redis again after a cool-down. While it
//     falls back each replica limits on its own, so N replicas admit up to N
//     times the Rate. When both fail, FailOpen decides.
//
// Middleware sets the RateLimit-Policy and RateLimit headers of
// draft-ietf-httpapi-ratelimit-headers-11 and the legacy X-RateLimit-*
// headers, answers 429 with Retry-After, and follows its FailOpen setting on
// limiter errors. ClientIP finds the client behind trusted proxies without
// believing anything a client can forge.
package ratelimit
