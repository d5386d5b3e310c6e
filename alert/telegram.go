package alert

import (
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/levqor/levqor/internal/backoff"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for TelegramConfig.
const (
	DefaultTelegramBaseURL = "https://api.telegram.org"
	DefaultMaxRetries      = 3
	DefaultBackoff         = time.Second
	DefaultMaxRetryAfter   = time.Minute
	DefaultMaxText         = 8000
	DefaultHTTPTimeout     = 10 * time.Second
	// MaxMessageLength is Telegram's limit on one message's text.
	MaxMessageLength = 4096
	maxTitleRunes    = 256
	maxKeyRunes      = 64
)

// ErrDelivery wraps every failure to deliver an alert.
var ErrDelivery = errors.New("alert: delivery failed")

// TelegramConfig configures a Telegram notifier.
type TelegramConfig struct {
	// Token is the bot token from @BotFather. Required. It is part of every
	// request URL and never appears in an error or log line.
	Token string
	// ChatID is the target chat: a numeric id or "@channelname". Required.
	ChatID string
	// BaseURL is the Bot API root. Default DefaultTelegramBaseURL.
	BaseURL string
	// Client sends the requests. Default: an http.Client with a
	// DefaultHTTPTimeout timeout.
	Client *http.Client
	// MaxRetries bounds retries after a 429 or 5xx. Default
	// DefaultMaxRetries (3); negative means no retries.
	MaxRetries int
	// Backoff is the first wait before retrying a 5xx or network error; it
	// doubles each time. Default DefaultBackoff (1s).
	Backoff time.Duration
	// MaxRetryAfter is the longest 429 retry_after honoured; a longer one
	// fails at once instead of blocking. Default DefaultMaxRetryAfter (1m).
	MaxRetryAfter time.Duration
	// Silent decides disable_notification. Default: Alert.Silent, or
	// severity info or success.
	Silent func(Alert) bool
	// MaxText caps the characters of an alert's Message (and of each
	// field value, at MaxText/8) that are sent; the rest is replaced by a
	// "[… N more characters]" marker, so one huge alert is a few messages,
	// not hundreds. Default DefaultMaxText (8000).
	MaxText int
	// Now stamps alerts without a Time. Default time.Now.
	Now func() time.Time
}

// Telegram sends alerts with the Bot API sendMessage method, formatted as
// MarkdownV2 and split into several messages when over 4096 characters.
type Telegram struct {
	cfg      TelegramConfig
	endpoint string // the methods' root; contains the token: never print it
	redacted string
	secrets  []string          // the token as it may be echoed: plain, path- and query-escaped
	sleep    backoff.SleepFunc // tests record waits instead (export_test.go)
}

var (
	_ Notifier = (*Telegram)(nil)
	_ error    = (*APIError)(nil)
)

// NewTelegram validates cfg. It does not contact Telegram.
func NewTelegram(cfg TelegramConfig) (*Telegram, error) {
	if cfg.Token == "" || cfg.ChatID == "" {
		return nil, fmt.Errorf("alert: TelegramConfig needs Token and ChatID")
	}
	if strings.ContainsAny(cfg.Token, "/?#% \t\r\n") {
		return nil, fmt.Errorf("alert: Telegram token has characters a bot token never has")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultTelegramBaseURL
	}
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("alert: TelegramConfig.BaseURL: %w", err)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if cfg.Silent == nil {
		cfg.Silent = func(a Alert) bool {
			return a.Silent || a.Severity == SeverityInfo || a.Severity == SeveritySuccess
		}
	}
	if cfg.MaxText == 0 {
		cfg.MaxText = DefaultMaxText
	}
	if cfg.MaxText < 80 {
		return nil, fmt.Errorf("alert: TelegramConfig.MaxText %d is below 80", cfg.MaxText)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &Telegram{
		cfg:      cfg,
		endpoint: base + "/bot" + cfg.Token + "/",
		redacted: base + "/bot<redacted>/",
		secrets:  uniq(cfg.Token, url.PathEscape(cfg.Token), url.QueryEscape(cfg.Token), strings.ReplaceAll(url.QueryEscape(cfg.Token), "%3A", "%3a")),
		sleep:    backoff.Sleep,
	}, nil
}

func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var severityEmoji = [...]string{"ℹ️", "✅", "⚠️", "🚨"}

// Format renders a as MarkdownV2 messages of at most MaxMessageLength.
func (t *Telegram) Format(a Alert) []string {
	emoji := "🔔"
	if a.Severity >= 0 && int(a.Severity) < len(severityEmoji) {
		emoji = severityEmoji[a.Severity]
	}
	when := a.Time
	if when.IsZero() {
		when = t.cfg.Now()
	}
	lines := []mdLine{
		mdLine{}.plain(emoji + " ").bold(truncate(a.Title, maxTitleRunes)).plain(" [" + strings.ToUpper(a.Severity.String()) + "]"),
	}
	if a.Message != "" {
		for _, l := range strings.Split(clipRunes(a.Message, t.cfg.MaxText), "\n") {
			lines = append(lines, mdLine{}.plain(l))
		}
	}
	if len(a.Fields) > 0 {
		lines = append(lines, mdLine{})
		for _, f := range a.Fields {
			lines = append(lines, mdLine{}.bold(truncate(f.Key, maxKeyRunes)+":").plain(" "+clipRunes(f.Value, t.cfg.MaxText/8)))
		}
	}
	lines = append(lines, mdLine{}, mdLine{}.plain(when.UTC().Format(time.RFC3339)))
	return chunk(lines, MaxMessageLength)
}

// clipRunes keeps the first n characters of s and says how many more there
// were.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + " [… " + strconv.Itoa(len(r)-n) + " more characters]"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Notify implements Notifier. Messages of a split alert are sent in order;
// a failure reports how many were delivered.
func (t *Telegram) Notify(ctx context.Context, a Alert) error {
	msgs := t.Format(a)
	silent := t.cfg.Silent(a)
	for i, m := range msgs {
		if err := t.send(ctx, m, silent); err != nil {
			if len(msgs) > 1 {
				return fmt.Errorf("%w: message %d of %d: %w", ErrDelivery, i+1, len(msgs), err)
			}
			return fmt.Errorf("%w: %w", ErrDelivery, err)
		}
	}
	return nil
}

// APIError is an unsuccessful Bot API answer.
type APIError struct {
	StatusCode  int
	ErrorCode   int
	Description string
	RetryAfter  time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram: HTTP %d: %s", e.StatusCode, e.Description)
}

type sendRequest struct {
	ChatID              string `json:"chat_id"`
	Text                string `json:"text"`
	ParseMode           string `json:"parse_mode"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
}

type apiResponse struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func (t *Telegram) send(ctx context.Context, text string, silent bool) error {
	body, err := json.Marshal(sendRequest{ChatID: t.cfg.ChatID, Text: text, ParseMode: "MarkdownV2", DisableNotification: silent})
	if err != nil {
		return err
	}
	policy := backoff.Policy{Attempts: t.cfg.MaxRetries + 1, Initial: t.cfg.Backoff, Max: t.cfg.MaxRetryAfter}
	tries := 0
	err = backoff.Do(ctx, policy, t.sleep, func(int) error {
		tries++
		err := t.post(ctx, "sendMessage", body)
		var apiErr *APIError
		switch {
		case err == nil || ctx.Err() != nil:
			return err
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
			return backoff.Retryable(err, max(apiErr.RetryAfter, time.Second))
		case errors.As(err, &apiErr) && apiErr.StatusCode < 500:
			return err // a request Telegram will never accept
		}
		return backoff.Retryable(err, 0) // 5xx or a network error
	})
	if err != nil && tries > 1 {
		return fmt.Errorf("after %d attempts: %w", tries, err)
	}
	return err
}

// Check asks Telegram, sending no message, whether the token is valid and
// the bot can reach ChatID (the Bot API's getChat): an *APIError says
// which is not (401 Unauthorized: the token; 400 "chat not found" or 403:
// the chat). For a configuration check such as a doctor command; it does
// not retry.
func (t *Telegram) Check(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"chat_id": t.cfg.ChatID})
	if err != nil {
		return err
	}
	return t.post(ctx, "getChat", body)
}

// post calls a Bot API method with a JSON body.
func (t *Telegram) post(ctx context.Context, method string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint+method, bytes.NewReader(body))
	if err != nil {
		return t.redact(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := t.cfg.Client.Do(req)
	if err != nil {
		return t.redact(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return t.redact(err)
	}
	var ar apiResponse
	if jerr := json.Unmarshal(raw, &ar); jerr != nil {
		if res.StatusCode == http.StatusOK {
			// Telegram answered 200: the message was accepted. Retrying
			// because a proxy mangled the body would send it twice.
			return nil
		}
		return &APIError{StatusCode: res.StatusCode, Description: http.StatusText(res.StatusCode)}
	}
	if res.StatusCode == http.StatusOK && ar.OK {
		return nil
	}
	return &APIError{
		StatusCode:  res.StatusCode,
		ErrorCode:   ar.ErrorCode,
		Description: t.scrub(ar.Description),
		RetryAfter:  time.Duration(ar.Parameters.RetryAfter) * time.Second,
	}
}

// redact removes the token from an error: *url.Error (which prints the
// request URL) is rewritten in place, and any other text is scrubbed.
func (t *Telegram) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = t.redacted
	}
	if msg := err.Error(); t.scrub(msg) != msg {
		return errors.New(t.scrub(msg))
	}
	return err
}

// scrub removes the token, also percent-encoded, from s.
func (t *Telegram) scrub(s string) string {
	for _, secret := range t.secrets {
		s = strings.ReplaceAll(s, secret, "<redacted>")
	}
	return s
}
