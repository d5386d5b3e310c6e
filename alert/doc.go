// Package alert delivers operational alerts: an Alert (severity, title,
// message, fields, time) and the Notifier interface, with
//
//   - Telegram: Bot API sendMessage in MarkdownV2 with every reserved
//     character escaped, long alerts split on rune boundaries into messages
//     of at most 4096 characters, silent notifications for info and success,
//     429 retry_after honoured, 5xx retried with backoff, and the bot token
//     kept out of every error and log line;
//   - Slog: the graceful default when no chat is configured (New picks it);
//   - Multi: fan-out to several notifiers;
//   - Queue: asynchronous delivery from one goroutine, bounded, drops
//     counted, drained on Close;
//   - History: the last N alerts with their delivery outcome, queryable;
//   - Dedup: the same alert once per repeat interval, with a repeat count;
//   - templates for common alerts (SystemDown, Recovered, SpendBreach,
//     SLOBreach, PayoutDone).
//
// A typical chain is Queue → Dedup → History → Telegram.
package alert
