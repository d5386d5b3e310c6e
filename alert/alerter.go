package alert

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Config configures an Alerter: the notifier stack most deployments want,
// in one value. Zero fields take the documented defaults of the parts.
type Config struct {
	// Telegram sends alerts to a chat when both Token and ChatID are set;
	// with neither, alerts go to Logger (nothing is lost, no error); one
	// without the other is a configuration error.
	Telegram TelegramConfig
	// RepeatInterval: the same alert is sent at most once per interval.
	// Default DefaultRepeatInterval (4h).
	RepeatInterval time.Duration
	// HistorySize is how many recent alerts History keeps. Default
	// DefaultHistorySize (100).
	HistorySize int
	// QueueSize bounds the alerts waiting for delivery. Default
	// DefaultQueueSize (256).
	QueueSize int
	// Logger receives alerts when Telegram is not configured, and delivery
	// failures. Default slog.Default().
	Logger *slog.Logger
	// Claimer shares de-duplication with the other replicas of a service
	// (DedupConfig.Claimer). Default nil: each process de-duplicates alone.
	Claimer Claimer
	// Now is the clock of History and de-duplication. Default time.Now.
	Now func() time.Time
}

// Alerter is the usual notifier stack: Notify enqueues without blocking
// (Queue), repeats of one alert are held back (Dedup), every delivery is
// recorded (History), and the alert goes to Telegram or the log. Shutdown
// delivers what is queued.
type Alerter struct {
	base    Notifier
	history *History
	dedup   *Dedup
	queue   *Queue
}

var _ Notifier = (*Alerter)(nil)

// New builds an Alerter and starts its delivery goroutine; Shutdown stops it.
func New(cfg Config) (*Alerter, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Alerter{}
	switch tg := cfg.Telegram; {
	case tg.Token == "" && tg.ChatID == "":
		a.base = NewSlog(cfg.Logger)
	case tg.Token == "" || tg.ChatID == "":
		return nil, errors.New("alert: Telegram needs both a bot token and a chat id")
	default:
		t, err := NewTelegram(tg)
		if err != nil {
			return nil, err
		}
		a.base = t
	}
	var err error
	if a.history, err = NewHistory(HistoryConfig{Next: a.base, Size: cfg.HistorySize, Now: cfg.Now}); err != nil {
		return nil, err
	}
	if a.dedup, err = NewDedup(DedupConfig{Next: a.history, RepeatInterval: cfg.RepeatInterval, Claimer: cfg.Claimer, Logger: cfg.Logger, Now: cfg.Now}); err != nil {
		return nil, err
	}
	if a.queue, err = NewQueue(QueueConfig{Next: a.dedup, Size: cfg.QueueSize, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	return a, nil
}

// Notify enqueues al without waiting (see Queue.Notify).
func (a *Alerter) Notify(ctx context.Context, al Alert) error { return a.queue.Notify(ctx, al) }

// Shutdown delivers what is queued, within ctx (see Queue.Shutdown).
func (a *Alerter) Shutdown(ctx context.Context) error { return a.queue.Shutdown(ctx) }

// History is the record of recent deliveries.
func (a *Alerter) History() *History { return a.history }

// Queue exposes the delivery counters (Delivered, Failed, Dropped).
func (a *Alerter) Queue() *Queue { return a.queue }
