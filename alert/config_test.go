package alert_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/alert"
)

// TestConfigErrors: each constructor refuses a configuration mistake when
// it is built, naming the field, and takes zero for its documented default.
func TestConfigErrors(t *testing.T) {
	next := alert.NewSlog(nil)
	for _, tc := range []struct {
		name  string
		build func() (any, error)
		want  string // "" for accepted
	}{
		{"queue defaults", func() (any, error) { return alert.NewQueue(alert.QueueConfig{Next: next}) }, ""},
		{"queue without Next", func() (any, error) { return alert.NewQueue(alert.QueueConfig{}) }, "Next is required"},
		{"queue negative Size", func() (any, error) { return alert.NewQueue(alert.QueueConfig{Next: next, Size: -1}) }, "must not be negative"},
		{"queue negative Timeout", func() (any, error) { return alert.NewQueue(alert.QueueConfig{Next: next, Timeout: -time.Second}) }, "must not be negative"},
		{"history defaults", func() (any, error) { return alert.NewHistory(alert.HistoryConfig{Next: next}) }, ""},
		{"history without Next", func() (any, error) { return alert.NewHistory(alert.HistoryConfig{}) }, "Next is required"},
		{"history negative Size", func() (any, error) { return alert.NewHistory(alert.HistoryConfig{Next: next, Size: -5}) }, "must not be negative"},
		{"history Size past the max", func() (any, error) {
			return alert.NewHistory(alert.HistoryConfig{Next: next, Size: math.MaxInt})
		}, "exceeds MaxHistorySize"},
		{"history Size at the max", func() (any, error) {
			return alert.NewHistory(alert.HistoryConfig{Next: next, Size: alert.MaxHistorySize})
		}, ""},
		{"queue Size past the max", func() (any, error) { return alert.NewQueue(alert.QueueConfig{Next: next, Size: math.MaxInt}) }, "exceeds MaxQueueSize"},
		{"queue Size at the max", func() (any, error) { return alert.NewQueue(alert.QueueConfig{Next: next, Size: alert.MaxQueueSize}) }, ""},
		{"alerter QueueSize past the max", func() (any, error) { return alert.New(alert.Config{QueueSize: alert.MaxQueueSize + 1}) }, "exceeds MaxQueueSize"},
		{"dedup defaults", func() (any, error) { return alert.NewDedup(alert.DedupConfig{Next: next}) }, ""},
		{"dedup without Next", func() (any, error) { return alert.NewDedup(alert.DedupConfig{}) }, "Next is required"},
		{"dedup negative RepeatInterval", func() (any, error) {
			return alert.NewDedup(alert.DedupConfig{Next: next, RepeatInterval: -time.Minute})
		}, "must not be negative"},
		{"dedup negative MaxKeys", func() (any, error) { return alert.NewDedup(alert.DedupConfig{Next: next, MaxKeys: -1}) }, "must not be negative"},
		{"alerter defaults", func() (any, error) { return alert.New(alert.Config{}) }, ""},
		{"alerter negative QueueSize", func() (any, error) { return alert.New(alert.Config{QueueSize: -1}) }, "must not be negative"},
		{"alerter negative HistorySize", func() (any, error) { return alert.New(alert.Config{HistorySize: -1}) }, "must not be negative"},
		{"alerter token without chat", func() (any, error) {
			return alert.New(alert.Config{Telegram: alert.TelegramConfig{Token: "123:abc"}})
		}, "both a bot token and a chat id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.build()
			if q, ok := v.(interface{ Shutdown(context.Context) error }); ok && err == nil {
				defer q.Shutdown(context.Background()) // stops the queue's goroutine
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
