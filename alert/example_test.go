package alert_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/levqor/levqor/alert"
)

func Example() {
	// Without a Telegram token alerts go to slog: nothing is lost.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the example's output stable
			}
			return a
		},
	}))
	n := alert.NewSlog(logger)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d, _ := alert.NewDedup(alert.DedupConfig{Next: n, Now: func() time.Time { return now }})

	ctx := context.Background()
	_ = d.Notify(ctx, alert.SpendBreach("2026-11-25", "$41.20", "$50.00", 80))
	_ = d.Notify(ctx, alert.SpendBreach("2026-11-25", "$41.90", "$50.00", 80)) // held back: same alert
	// Output:
	// level=WARN msg=alert severity=warning title="Daily spend at 80% of limit" fields.Day=2026-11-25 fields.Spent=$41.20 fields.Limit=$50.00
}

func ExampleEscapeMarkdownV2() {
	fmt.Println(alert.EscapeMarkdownV2("CPU at 97.5% (db-1)!"))
	// Output: CPU at 97\.5% \(db\-1\)\!
}
