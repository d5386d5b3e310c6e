package tokens

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisFeedConfig.
const (
	DefaultRedisFeedChannel = "levqor:tok:revocations"
	// DefaultRedisFeedPing is how long the subscription may stay silent
	// before it is pinged; without an answer within as long again it
	// counts as down.
	DefaultRedisFeedPing = time.Second
)

// RedisFeedConfig configures a RedisFeed.
type RedisFeedConfig struct {
	// Client is a Redis, Redis Cluster or Sentinel client. Required; the
	// feed never closes it.
	Client redis.UniversalClient
	// Channel is the pub/sub channel. Default DefaultRedisFeedChannel.
	Channel string
	// Ping is the silence after which the subscription is checked.
	// Default DefaultRedisFeedPing (1s).
	Ping time.Duration
}

// RedisFeed is a Feed over Redis pub/sub (cluster-wide on Redis Cluster).
// Publications are not stored: a subscriber that was disconnected reports
// Down, and Up again once resubscribed, so its Cache starts afresh.
type RedisFeed struct {
	c       redis.UniversalClient
	channel string
	ping    time.Duration
}

var _ Feed = (*RedisFeed)(nil)

// NewRedisFeed validates cfg. It does not contact Redis.
func NewRedisFeed(cfg RedisFeedConfig) (*RedisFeed, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("tokens: RedisFeedConfig.Client is required")
	}
	if cfg.Ping < 0 {
		return nil, fmt.Errorf("tokens: RedisFeedConfig.Ping must not be negative")
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultRedisFeedChannel
	}
	if cfg.Ping == 0 {
		cfg.Ping = DefaultRedisFeedPing
	}
	return &RedisFeed{c: cfg.Client, channel: cfg.Channel, ping: cfg.Ping}, nil
}

// Publish implements Feed.
func (f *RedisFeed) Publish(ctx context.Context, family string) error {
	return f.c.Publish(ctx, f.channel, family).Err()
}

// Subscribe implements Feed. It resubscribes after any failure, waiting
// up to Ping between attempts.
func (f *RedisFeed) Subscribe(ctx context.Context, ev FeedEvents) {
	for ctx.Err() == nil {
		err := f.session(ctx, ev)
		if ctx.Err() != nil {
			return
		}
		ev.Down(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.ping):
		}
	}
}

// session subscribes once and delivers until the subscription fails.
func (f *RedisFeed) session(ctx context.Context, ev FeedEvents) error {
	ps := f.c.Subscribe(ctx, f.channel)
	defer ps.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // ReceiveTimeout does not watch ctx: closing ends a pending read
		select {
		case <-ctx.Done():
			_ = ps.Close()
		case <-stop:
		}
	}()
	if _, err := ps.ReceiveTimeout(ctx, 2*f.ping); err != nil { // the subscribe confirmation
		return err
	}
	ev.Up()
	pinged := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, f.ping)
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		case err != nil:
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			ev.Changed(m.Payload)
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return fmt.Errorf("tokens: revocation feed: %s", m.Kind)
			}
			// Resubscribed after a reconnect inside go-redis: publications
			// in between were missed.
			ev.Down(errors.New("tokens: revocation feed reconnected"))
			ev.Up()
		}
	}
	return ctx.Err()
}
