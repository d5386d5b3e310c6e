package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/levqor/levqor/alert"
)

// isTTY reports whether w is a terminal, for progress output.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// opsNotifier is where the ops commands (spend, slo, backup, payouts,
// sitemap) send alerts: Telegram when configured, else the log, as the
// server does. It is synchronous, unlike the server's queue: a command
// learns whether its alert went out before it exits.
func opsNotifier(cfg config, log *slog.Logger) (alert.Notifier, error) {
	if cfg.TelegramToken == "" {
		return alert.NewSlog(log), nil
	}
	return alert.NewTelegram(alert.TelegramConfig{Token: cfg.TelegramToken, ChatID: cfg.TelegramChat, BaseURL: cfg.TelegramAPI})
}

// opsAlert sends alert a for an ops command run from cron, where a
// failure would otherwise reach no one (cron mails the output, if it is
// set up to); a failure to send is printed.
func opsAlert(ctx context.Context, env *cliEnv, a alert.Alert) {
	n, err := opsNotifier(env.cfg, env.log)
	if err == nil {
		err = n.Notify(ctx, a)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "%s; the alert was not sent: %v\n", a.Title, err)
	}
}
