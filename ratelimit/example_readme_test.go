package ratelimit_test

import (
	"net/http"
	"net/netip"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/tokens"
)

// Example_readme is the ratelimit section of the README, compiled.
func Example_readme() {
	var (
		trusted []netip.Prefix
		rdb     redis.UniversalClient = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		m       *tokens.Manager
		api     http.Handler = http.NotFoundHandler()
	)
	defer rdb.Close()
	// README:begin
	ip, _ := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted}) // ratelimit.ParsePrefixes("10.0.0.0/8")
	mem, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(60), MaxKeys: 100_000})
	red, _ := ratelimit.NewRedis(ratelimit.RedisConfig{Client: rdb, Rate: ratelimit.PerMinute(60)})
	limiter, _ := ratelimit.NewFallback(ratelimit.FallbackConfig{Primary: red, Secondary: mem})
	defer limiter.Close()

	mw, _ := ratelimit.Middleware(ratelimit.MiddlewareConfig{
		Limiter: limiter,
		KeyFunc: ratelimit.KeyBySubject(tokens.SubjectFromContext, ratelimit.KeyByIP(ip)),
	})
	// OptionalAuth verifies a token once so the limiter can key by subject;
	// tokens.RequireAuth on the protected routes inside api reuses those
	// claims (no second verification).
	handler := tokens.OptionalAuth(m)(mw(api))
	// README:end
	_ = handler
}
