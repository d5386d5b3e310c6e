// Package backoff is the one retry loop of Levqor: exponential waits,
// server-requested waits (Retry-After, Telegram's retry_after) honoured up
// to a cap, and sleeps that end with the context.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sleep waits d, or until ctx ends (returning ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SleepFunc is Sleep's signature; types keep one in an unexported field so
// tests can record waits instead of sleeping.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Policy bounds a retry loop.
type Policy struct {
	// Attempts is the number of tries in all (1: no retry).
	Attempts int
	// Initial is the first wait; each later one doubles, up to Max.
	Initial time.Duration
	// Max caps every wait. A server asking for a longer wait is not
	// obeyed: the loop gives up at once (ErrWaitTooLong), so data from
	// outside can never make a caller sleep for hours.
	Max time.Duration
}

// ErrWaitTooLong is returned (wrapping the last error) when a server asks
// for a wait longer than Policy.Max.
var ErrWaitTooLong = errors.New("server asked to wait longer than allowed")

// Retry is returned by an attempt that may succeed later. After, when
// positive, is the wait the server asked for.
type Retry struct {
	Err   error
	After time.Duration
}

func (r *Retry) Error() string { return r.Err.Error() }
func (r *Retry) Unwrap() error { return r.Err }

// Retryable marks err as worth another attempt, after the server's wait
// when after > 0.
func Retryable(err error, after time.Duration) error { return &Retry{Err: err, After: after} }

// Do calls attempt until it returns nil, returns an error that is not
// Retryable, or Policy.Attempts are used; between attempts it sleeps the
// exponential wait or the server's (capped by Max). It returns the last
// error, with the Retry wrapper removed. sleep nil means Sleep.
func Do(ctx context.Context, p Policy, sleep SleepFunc, attempt func(n int) error) error {
	if sleep == nil {
		sleep = Sleep
	}
	wait := p.Initial
	for n := 1; ; n++ {
		err := attempt(n)
		if err == nil {
			return nil
		}
		var r *Retry
		if !errors.As(err, &r) {
			return err
		}
		if n >= p.Attempts {
			return r.Err
		}
		d := wait
		if r.After > 0 {
			if p.Max > 0 && r.After > p.Max {
				return fmt.Errorf("%w (%v > %v): %w", ErrWaitTooLong, r.After, p.Max, r.Err)
			}
			d = r.After
		}
		if p.Max > 0 {
			d = min(d, p.Max)
		}
		if serr := sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", r.Err, serr)
		}
		wait *= 2
	}
}

// RetryAfter reads an HTTP Retry-After header: delta-seconds or an
// HTTP-date (RFC 9110 §10.2.3). ok is false when it is absent or invalid.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		const year = int64(365 * 24 * time.Hour / time.Second)
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, year)) * time.Second, true // no overflow
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
