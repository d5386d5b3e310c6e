package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults for a zero Rate: 60 requests per minute with a burst of 60.
const (
	DefaultLimit  = 60
	DefaultPeriod = time.Minute
)

// MinInterval is the smallest emission interval (Period/Limit): rates are
// computed in whole microseconds so that the memory and Redis limiters, whose
// Lua arithmetic is in float64, take exactly the same decisions.
const MinInterval = time.Microsecond

// MaxResetWindow bounds Burst × Period/Limit, the time a key takes to
// refill a full burst: beyond it the microsecond arithmetic would overflow
// (a Result's durations are int64 nanoseconds) or leave the integers that
// the Redis script's float64 arithmetic holds exactly (below 2^53 µs).
const MaxResetWindow = 100 * 365 * 24 * time.Hour

var (
	// ErrUnavailable is returned when no limiter could decide (the store and
	// its fallback both failed) and the configuration says fail closed.
	ErrUnavailable = errors.New("ratelimit: limiter unavailable")
	// ErrInvalidRate reports a Rate that cannot be enforced.
	ErrInvalidRate = errors.New("ratelimit: invalid rate")
)

// Rate is "Limit requests per Period, at most Burst at once". Requests are
// spread evenly: one is allowed every Period/Limit, and up to Burst can be
// sent back to back after an idle time. Zero fields take the defaults: Limit
// 60, Period one minute, Burst equal to Limit.
type Rate struct {
	Limit  int
	Period time.Duration
	Burst  int
}

// PerSecond, PerMinute and PerHour return n requests per period with a burst of n.
func PerSecond(n int) Rate { return Rate{Limit: n, Period: time.Second, Burst: n} }

// PerMinute returns n requests per minute with a burst of n.
func PerMinute(n int) Rate { return Rate{Limit: n, Period: time.Minute, Burst: n} }

// PerHour returns n requests per hour with a burst of n.
func PerHour(n int) Rate { return Rate{Limit: n, Period: time.Hour, Burst: n} }

// ParseRate parses "N/unit" or "N/unit:burst" where unit is s, m, h, or a Go
// duration ("100/10s"). Example: "60/m", "10/s:20".
func ParseRate(s string) (Rate, error) {
	spec, burstStr, hasBurst := strings.Cut(strings.TrimSpace(s), ":")
	nStr, unit, ok := strings.Cut(spec, "/")
	if !ok {
		return Rate{}, fmt.Errorf("%w: %q: want N/unit, e.g. 60/m", ErrInvalidRate, s)
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("%w: %q: count must be a positive integer", ErrInvalidRate, s)
	}
	var period time.Duration
	switch unit {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	default:
		if period, err = time.ParseDuration(unit); err != nil || period <= 0 {
			return Rate{}, fmt.Errorf("%w: %q: unit must be s, m, h or a positive duration", ErrInvalidRate, s)
		}
	}
	r := Rate{Limit: n, Period: period, Burst: n}
	if hasBurst {
		if r.Burst, err = strconv.Atoi(burstStr); err != nil || r.Burst <= 0 {
			return Rate{}, fmt.Errorf("%w: %q: burst must be a positive integer", ErrInvalidRate, s)
		}
	}
	if err := r.validate(); err != nil {
		return Rate{}, err
	}
	return r, nil
}

// String formats the rate as ParseRate accepts it.
func (r Rate) String() string {
	r = r.withDefaults()
	s := strconv.Itoa(r.Limit) + "/" + r.Period.String()
	if r.Burst != r.Limit {
		s += ":" + strconv.Itoa(r.Burst)
	}
	return s
}

func (r Rate) withDefaults() Rate {
	if r.Limit == 0 {
		r.Limit = DefaultLimit
	}
	if r.Period == 0 {
		r.Period = DefaultPeriod
	}
	if r.Burst == 0 {
		r.Burst = r.Limit
	}
	return r
}

func (r Rate) validate() error {
	r = r.withDefaults()
	switch {
	case r.Limit < 0 || r.Period < 0 || r.Burst < 0:
		return fmt.Errorf("%w: negative field in %+v", ErrInvalidRate, r)
	case r.Period/time.Duration(r.Limit) < MinInterval:
		return fmt.Errorf("%w: %v allows more than one request per microsecond", ErrInvalidRate, r)
	case int64(r.Burst) > int64(MaxResetWindow/time.Microsecond)/r.interval():
		return fmt.Errorf("%w: %v takes longer than MaxResetWindow (%v) to refill its burst", ErrInvalidRate, r, MaxResetWindow)
	}
	return nil
}

// interval is the emission interval T = Period/Limit in whole microseconds.
func (r Rate) interval() int64 {
	return int64((r.Period/time.Duration(r.Limit) + time.Microsecond/2) / time.Microsecond)
}

// Result is one decision.
type Result struct {
	Allowed bool
	// Limit is the burst: how many requests the key may send back to back.
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter is how long until the next request is allowed (0 when this
	// one was).
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to a full burst.
	ResetAfter time.Duration
}

// Limiter decides whether a request for a key may proceed.
type Limiter interface {
	// Allow takes one request from key's budget if it has one.
	Allow(ctx context.Context, key string) (Result, error)
	// Rate is the policy the limiter enforces.
	Rate() Rate
}

// gcra is the Generic Cell Rate Algorithm on microsecond timestamps; the
// Redis script is a line-for-line copy of it. tat is the key's theoretical
// arrival time (0 for an unknown key). It fills r with the decision (in
// place: the result is not copied on the hot path) and returns the new tat
// to store (unchanged when denied).
func gcra(r *Result, tat, now, interval, burst int64) int64 {
	tat = max(tat, now)
	newTat := tat + interval
	allowAt := newTat - burst*interval
	if now < allowAt {
		*r = Result{
			Limit:      int(burst),
			RetryAfter: time.Duration(allowAt-now) * time.Microsecond,
			ResetAfter: time.Duration(tat-now) * time.Microsecond,
		}
		return tat
	}
	ttl := newTat - now
	remaining := burst - 1 // an idle key: no division
	if ttl != interval {
		remaining = (burst*interval - ttl) / interval
	}
	*r = Result{
		Allowed:    true,
		Limit:      int(burst),
		Remaining:  int(remaining),
		ResetAfter: time.Duration(ttl) * time.Microsecond,
	}
	return newTat
}
