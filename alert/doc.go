// Package alert delivers operational alerts: an Alert (severity, title,
// message, fields, time) and the Notifier interface.
//
// # Quick start
//
//	alerts, _ := alert.New(alert.Config{Telegram: alert.TelegramConfig{Token: token, ChatID: chat}})
//	defer alerts.Shutdown(ctx)
//	_ = alerts.Notify(ctx, alert.SystemDown("payments", err))
//
// New builds the usual chain, Queue → Dedup → History → Telegram (or Slog
// when no chat is configured), as one Alerter.
//
// # Notifiers
//
//   - Telegram: Bot API sendMessage in MarkdownV2 with every reserved
//     character escaped, long alerts split on rune boundaries into messages
//     of at most 4096 characters (an alert's text capped by MaxText),
//     silent notifications for info and success, 429 retry_after honoured
//     up to a cap, 5xx retried with backoff, and the bot token kept out of
//     every error and log line, percent-encoded too;
//   - Slog: the graceful default when no chat is configured;
//   - Multi: fan-out to several notifiers;
//   - Queue: asynchronous delivery from one goroutine, bounded, drops
//     counted, drained by Shutdown within its deadline;
//   - History: the last N alerts with their delivery outcome, queryable;
//   - Dedup: the same alert once per repeat interval (exact under
//     concurrency, bounded memory), with a repeat count; with a Claimer,
//     once between every process sharing it (replicas);
//   - templates for common alerts (SystemDown, Recovered, SpendBreach,
//     SLOBreach, PayoutDone).
package alert
