package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for FallbackConfig.
const (
	DefaultPrimaryTimeout   = 100 * time.Millisecond
	DefaultFailureThreshold = 3
	DefaultCooldown         = 5 * time.Second
)

// FallbackConfig configures a Fallback limiter.
type FallbackConfig struct {
	// Primary is the shared limiter (usually Redis). Required.
	Primary Limiter
	// Secondary decides while Primary is failing (usually Memory). Required.
	Secondary Limiter
	// Timeout bounds each Primary call. Default DefaultPrimaryTimeout (100ms);
	// negative means only the caller's context bounds it.
	Timeout time.Duration
	// FailureThreshold is how many consecutive Primary failures open the
	// circuit. Default DefaultFailureThreshold (3).
	FailureThreshold int
	// Cooldown is how long an open circuit waits before one request probes
	// Primary again. Default DefaultCooldown (5s).
	Cooldown time.Duration
	// FailOpen allows requests when Secondary fails too. Default false:
	// Allow returns ErrUnavailable.
	FailOpen bool
	// Logger receives circuit state changes. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for the cooldown. Default time.Now.
	Now func() time.Time
}

// Fallback decides with Primary and falls back to Secondary when Primary
// errors or times out. A circuit breaker stops calling a dead Primary after
// FailureThreshold consecutive failures and lets one request probe it after
// each Cooldown; the first success closes the circuit again. Requests a
// Redis primary answers from its remembered denials are answered so even
// while the circuit is open, and count as neither success nor failure.
//
// While it falls back, each replica limits on its own: N replicas admit up to
// N times the Rate in total. Every failed-over decision is counted
// (Fallbacks) so it can be alerted on.
type Fallback struct {
	cfg FallbackConfig
	// remembered is Primary when it answers some requests without its
	// store (a Redis limiter's remembered denials): nil otherwise.
	remembered rememberer
	// askPrimary decides with Primary once remembered has not answered:
	// Primary.Allow, or rememberer.ask, which does not look again.
	askPrimary func(context.Context, string) (Result, error)

	mu       sync.Mutex
	failures int
	open     bool
	openedAt time.Time
	probing  bool

	fallbacks, failedBoth atomic.Uint64
}

var (
	_ Limiter   = (*Fallback)(nil)
	_ io.Closer = (*Fallback)(nil)
)

// NewFallback validates cfg.
func NewFallback(cfg FallbackConfig) (*Fallback, error) {
	if cfg.Primary == nil || cfg.Secondary == nil {
		return nil, fmt.Errorf("ratelimit: FallbackConfig needs Primary and Secondary")
	}
	if cfg.Primary.Rate() != cfg.Secondary.Rate() {
		return nil, fmt.Errorf("ratelimit: Primary rate %v differs from Secondary rate %v", cfg.Primary.Rate(), cfg.Secondary.Rate())
	}
	if cfg.FailureThreshold < 0 || cfg.Cooldown < 0 {
		return nil, fmt.Errorf("ratelimit: FailureThreshold and Cooldown must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultPrimaryTimeout
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = DefaultFailureThreshold
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fallback{cfg: cfg, askPrimary: cfg.Primary.Allow}
	if r, ok := cfg.Primary.(rememberer); ok {
		f.remembered, f.askPrimary = r, r.ask
	}
	return f, nil
}

// rememberer is a limiter that answers some requests without asking its
// store, as Redis answers keys it remembers as denied. Fallback takes
// those answers first, whether or not the circuit is open: they tell
// nothing of the store's health, so they must neither close the circuit
// nor break a run of failures that should open it.
type rememberer interface {
	remembered(key string) (Result, bool)
	ask(ctx context.Context, key string) (Result, error)
}

// Rate implements Limiter.
func (f *Fallback) Rate() Rate { return f.cfg.Primary.Rate() }

// Close closes Primary and Secondary when they implement io.Closer (a
// Memory secondary stops its sweeper) and returns their errors joined.
func (f *Fallback) Close() error {
	var errs []error
	for _, l := range []Limiter{f.cfg.Primary, f.cfg.Secondary} {
		if c, ok := l.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Allow implements Limiter.
func (f *Fallback) Allow(ctx context.Context, key string) (Result, error) {
	if f.remembered != nil {
		if res, ok := f.remembered.remembered(key); ok {
			return res, nil
		}
	}
	if f.usePrimary() {
		res, err := f.callPrimary(ctx, key)
		if err == nil {
			f.succeeded()
			return res, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the primary.
			f.abandoned()
			return Result{}, ctx.Err()
		}
		f.failed(err)
	}
	f.fallbacks.Add(1)
	res, err := f.cfg.Secondary.Allow(ctx, key)
	if err == nil {
		return res, nil
	}
	f.failedBoth.Add(1)
	if f.cfg.FailOpen {
		r := f.Rate()
		return Result{Allowed: true, Limit: r.Burst, Remaining: r.Burst}, nil
	}
	return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (f *Fallback) callPrimary(ctx context.Context, key string) (Result, error) {
	if f.cfg.Timeout < 0 {
		return f.askPrimary(ctx, key)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	res, err := f.askPrimary(ctx, key)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("ratelimit: primary timed out after %v: %w", f.cfg.Timeout, err)
	}
	return res, err
}

// usePrimary reports whether this request goes to the primary: always while
// the circuit is closed; when open, only one probe per cooldown.
func (f *Fallback) usePrimary() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return true
	}
	if f.probing || f.cfg.Now().Sub(f.openedAt) < f.cfg.Cooldown {
		return false
	}
	f.probing = true
	return true
}

func (f *Fallback) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = 0
	f.probing = false
	if f.open {
		f.open = false
		f.cfg.Logger.Info("ratelimit: primary limiter recovered; circuit closed")
	}
}

func (f *Fallback) abandoned() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probing = false
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures++
	if f.open {
		// A failed probe: wait another cooldown.
		f.openedAt, f.probing = f.cfg.Now(), false
		return
	}
	if f.failures >= f.cfg.FailureThreshold {
		f.open, f.openedAt = true, f.cfg.Now()
		f.cfg.Logger.Warn("ratelimit: primary limiter failing; circuit open, limiting per replica",
			"failures", f.failures, "cooldown", f.cfg.Cooldown, "err", err)
	}
}

// Open reports whether the circuit is open (decisions come from Secondary).
func (f *Fallback) Open() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// Fallbacks is how many decisions were taken by Secondary.
func (f *Fallback) Fallbacks() uint64 { return f.fallbacks.Load() }

// Unavailable is how many decisions neither limiter could take.
func (f *Fallback) Unavailable() uint64 { return f.failedBoth.Load() }
