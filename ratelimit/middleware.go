package ratelimit

import (
	"github.com/levqor/levqor/internal/httpx"

	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// smallInts are the decimal strings of 0..len-1, so the common header
// values cost no allocation.
var smallInts = func() (out [1024]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

func smallItoa(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// DefaultPolicyName names the policy in the RateLimit headers.
const DefaultPolicyName = "default"

// KeyFunc returns the rate-limit key of a request.
type KeyFunc func(r *http.Request) string

// KeyByIP keys requests by client address ("ip:203.0.113.7").
func KeyByIP(c *ClientIP) KeyFunc {
	return func(r *http.Request) string { return "ip:" + c.Key(r) }
}

// KeyBySubject keys authenticated requests by subject ("sub:<id>") and
// falls back to the given KeyFunc (usually KeyByIP) for anonymous ones.
// subject reads the authenticated identity from the context, for example
// tokens.SubjectFromContext; "" means anonymous.
func KeyBySubject(subject func(context.Context) string, fallback KeyFunc) KeyFunc {
	return func(r *http.Request) string {
		if s := subject(r.Context()); s != "" {
			return "sub:" + s
		}
		return fallback(r)
	}
}

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	// Limiter decides. Required.
	Limiter Limiter
	// KeyFunc picks the key. Default: KeyByIP with RemoteAddr only (no
	// trusted proxies).
	KeyFunc KeyFunc
	// PolicyName names the policy in RateLimit-Policy and RateLimit.
	// Default DefaultPolicyName. It must be a structured-field token
	// character string (letters, digits, "-", "_", ".").
	PolicyName string
	// OmitLegacyHeaders leaves out X-RateLimit-Limit, -Remaining and
	// -Reset, for clients that read the IETF RateLimit fields only.
	// Default false: both are sent.
	OmitLegacyHeaders bool
	// FailOpen lets requests through when the Limiter errors. Default false:
	// 503 with a JSON body, the handler is not called.
	FailOpen bool
	// Logger receives Limiter errors. Default slog.Default().
	Logger *slog.Logger
}

// Middleware limits requests per key. Every response carries
//
//	RateLimit-Policy: "<name>";q=<burst>;w=<seconds to refill the burst>
//	RateLimit: "<name>";r=<remaining>;t=<seconds until the burst is full>
//	X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (unless OmitLegacyHeaders)
//
// (draft-ietf-httpapi-ratelimit-headers-11; X-RateLimit-Reset is the same
// delta-seconds as t, not a Unix time). A refused request gets 429 with
// Retry-After (seconds, rounded up) and a JSON body; the handler is not called.
func Middleware(cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if cfg.Limiter == nil {
		return nil, fmt.Errorf("ratelimit: MiddlewareConfig.Limiter is required")
	}
	if cfg.PolicyName == "" {
		cfg.PolicyName = DefaultPolicyName
	}
	for _, r := range cfg.PolicyName {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return nil, fmt.Errorf("ratelimit: PolicyName %q has a character outside [A-Za-z0-9._-]", cfg.PolicyName)
		}
	}
	if cfg.KeyFunc == nil {
		ip, _ := NewClientIP(IPConfig{})
		cfg.KeyFunc = KeyByIP(ip)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rate := cfg.Limiter.Rate()
	window := ceilSeconds(time.Duration(rate.Burst) * time.Duration(rate.interval()) * time.Microsecond)
	// Header values that never change are built once.
	policy := []string{`"` + cfg.PolicyName + `";q=` + strconv.Itoa(rate.Burst) + ";w=" + strconv.FormatInt(window, 10)}
	limit := []string{strconv.Itoa(rate.Burst)}
	prefix := `"` + cfg.PolicyName + `";r=`

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := cfg.Limiter.Allow(r.Context(), cfg.KeyFunc(r))
			if err != nil {
				cfg.Logger.ErrorContext(r.Context(), "ratelimit: limiter failed", "err", err, "fail_open", cfg.FailOpen)
				if cfg.FailOpen {
					next.ServeHTTP(w, r)
					return
				}
				writeJSON(w, http.StatusServiceUnavailable, `{"error":"rate limiter unavailable"}`)
				return
			}
			h := w.Header()
			reset := smallItoa(ceilSeconds(res.ResetAfter))
			remaining := smallItoa(int64(res.Remaining))
			h["Ratelimit-Policy"] = policy
			if cfg.OmitLegacyHeaders {
				h["Ratelimit"] = []string{prefix + remaining + ";t=" + reset}
			} else {
				// One backing array for the three per-request values; each
				// header gets a full slice, so an Add by a handler copies.
				vals := make([]string, 3)
				vals[0], vals[1], vals[2] = prefix+remaining+";t="+reset, remaining, reset
				h["Ratelimit"] = vals[0:1:1]
				h["X-Ratelimit-Limit"] = limit
				h["X-Ratelimit-Remaining"] = vals[1:2:2]
				h["X-Ratelimit-Reset"] = vals[2:3:3]
			}
			if !res.Allowed {
				retry := strconv.FormatInt(max(1, ceilSeconds(res.RetryAfter)), 10)
				h["Retry-After"] = []string{retry}
				writeJSON(w, http.StatusTooManyRequests, `{"error":"rate limit exceeded","retry_after":`+retry+`}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func writeJSON(w http.ResponseWriter, status int, body string) { httpx.WriteRawJSON(w, status, body) }
