package alert_test

import (
	"context"
	"errors"
	"os"

	"github.com/levqor/levqor/alert"
)

// Example_readme is the alert section of the README, compiled.
func Example_readme() {
	ctx, err := context.Background(), errors.New("connection refused")
	// README:begin
	alerts, _ := alert.New(alert.Config{ // Telegram, or the log when unconfigured
		Telegram: alert.TelegramConfig{Token: os.Getenv("TELEGRAM_BOT_TOKEN"), ChatID: os.Getenv("TELEGRAM_CHAT_ID")},
	})
	defer alerts.Shutdown(ctx)                                // delivers what is queued, within ctx
	_ = alerts.Notify(ctx, alert.SystemDown("payments", err)) // queued: never blocks a request
	// README:end
}
