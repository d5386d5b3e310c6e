package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// MaxQueueSize bounds QueueConfig.Size (and Config.QueueSize): the
// buffer is allocated up front.
const MaxQueueSize = 1 << 20

// Defaults for QueueConfig.
const (
	DefaultQueueSize       = 256
	DefaultDeliveryTimeout = 30 * time.Second
)

// Queue errors.
var (
	ErrQueueFull = errors.New("alert: queue full; alert dropped")
	ErrClosed    = errors.New("alert: queue closed")
)

// QueueConfig configures a Queue.
type QueueConfig struct {
	// Next delivers the alerts. Required.
	Next Notifier
	// Size bounds the alerts waiting, at most MaxQueueSize. Default
	// DefaultQueueSize (256).
	Size int
	// Timeout bounds each delivery. Default DefaultDeliveryTimeout (30s).
	Timeout time.Duration
	// Logger receives delivery failures. Default slog.Default().
	Logger *slog.Logger
}

// Queue delivers alerts from one background goroutine so that a slow
// notifier never blocks a request. Notify never waits: when the queue is
// full the alert is dropped, counted and ErrQueueFull returned. Shutdown
// drains what is queued, within its context's deadline.
type Queue struct {
	cfg    QueueConfig
	ch     chan Alert
	done   chan struct{}
	ctx    context.Context // cancelled when Shutdown gives up draining
	cancel context.CancelFunc

	mu     sync.RWMutex
	closed bool

	dropped, failed, delivered atomic.Uint64
}

var _ Notifier = (*Queue)(nil)

// NewQueue validates cfg and starts the delivery goroutine.
func NewQueue(cfg QueueConfig) (*Queue, error) {
	if cfg.Next == nil {
		return nil, errors.New("alert: QueueConfig.Next is required")
	}
	if cfg.Size < 0 || cfg.Timeout < 0 {
		return nil, errors.New("alert: QueueConfig.Size and Timeout must not be negative")
	}
	if cfg.Size > MaxQueueSize {
		return nil, fmt.Errorf("alert: QueueConfig.Size %d exceeds MaxQueueSize (%d)", cfg.Size, MaxQueueSize)
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultQueueSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultDeliveryTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{cfg: cfg, ch: make(chan Alert, cfg.Size), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go q.run()
	return q, nil
}

// Notify enqueues a without waiting.
func (q *Queue) Notify(_ context.Context, a Alert) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.ch <- a:
		return nil
	default:
		q.dropped.Add(1)
		return ErrQueueFull
	}
}

func (q *Queue) run() {
	defer close(q.done)
	for a := range q.ch {
		if q.ctx.Err() != nil { // Shutdown gave up: drop the rest
			q.dropped.Add(1)
			continue
		}
		ctx, cancel := context.WithTimeout(q.ctx, q.cfg.Timeout)
		err := q.cfg.Next.Notify(ctx, a)
		cancel()
		if err != nil {
			q.failed.Add(1)
			q.cfg.Logger.Error("alert: delivery failed", "title", a.Title, "severity", a.Severity.String(), "err", err)
			continue
		}
		q.delivered.Add(1)
	}
}

// ErrUndelivered is returned by Shutdown when ctx ended before every
// queued alert was delivered.
var ErrUndelivered = errors.New("alert: shutdown deadline passed with alerts undelivered")

// Shutdown stops accepting alerts and waits until the queued ones are
// delivered or ctx ends. At the deadline it returns at once, whatever the
// notifier is doing: the in-flight delivery's context is cancelled, the
// alerts still queued are dropped (counted in Dropped), and the error
// wraps ErrUndelivered and ctx.Err() with how many were left. The delivery
// goroutine exits as soon as the notifier returns. Safe to call more than
// once.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		left := len(q.ch) + 1 // the queue, and the delivery in flight
		select {
		case <-q.done:
			left = 0
		default:
		}
		if left == 0 {
			return nil
		}
		return fmt.Errorf("%w: %d alert(s): %w", ErrUndelivered, left, ctx.Err())
	}
}

// Dropped, Failed and Delivered count alerts by outcome.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Failed counts alerts whose delivery returned an error.
func (q *Queue) Failed() uint64 { return q.failed.Load() }

// Delivered counts alerts delivered.
func (q *Queue) Delivered() uint64 { return q.delivered.Load() }
