package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// ExampleTelegram sends through a Queue, so Notify never blocks; a stand-in
// Bot API server prints the MarkdownV2 text Telegram would receive.
func ExampleTelegram() {
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Text string `json:"text"`
		}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		fmt.Println(msg.Text)
		fmt.Fprint(w, `{"ok":true,"result":{"message_id":1}}`)
	}))
	defer bot.Close()
	tg, _ := alert.NewTelegram(alert.TelegramConfig{Token: "123:ABC", ChatID: "-100", BaseURL: bot.URL})
	q, _ := alert.NewQueue(alert.QueueConfig{Next: tg})
	ctx := context.Background()
	_ = q.Notify(ctx, alert.Alert{
		Severity: alert.SeverityCritical, Title: "Disk 91.5% full (db-1)",
		Fields: []alert.Field{{Key: "free", Value: "2.1 GB"}},
		Time:   time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
	})
	_ = q.Shutdown(ctx) // delivers what is queued
	fmt.Println("delivered:", q.Delivered())
	// Output:
	// 🚨 *Disk 91\.5% full \(db\-1\)* \[CRITICAL\]
	//
	// *free:* 2\.1 GB
	//
	// 2026\-11\-25T12:00:00Z
	// delivered: 1
}
