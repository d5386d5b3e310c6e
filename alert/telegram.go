package alert

import (
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
	// Now stamps alerts without a Time. Default time.Now.
	Now func() time.Time
	// Sleep waits between retries and returns early with ctx.Err().
	// Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Telegram sends alerts with the Bot API sendMessage method, formatted as
// MarkdownV2 and split into several messages when over 4096 characters.
type Telegram struct {
	cfg      TelegramConfig
	endpoint string // contains the token: never print it
	redacted string
}

var _ Notifier = (*Telegram)(nil)

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &Telegram{
		cfg:      cfg,
		endpoint: base + "/bot" + cfg.Token + "/sendMessage",
		redacted: base + "/bot<redacted>/sendMessage",
	}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
		for _, l := range strings.Split(a.Message, "\n") {
			lines = append(lines, mdLine{}.plain(l))
		}
	}
	if len(a.Fields) > 0 {
		lines = append(lines, mdLine{})
		for _, f := range a.Fields {
			lines = append(lines, mdLine{}.bold(truncate(f.Key, maxKeyRunes)+":").plain(" "+f.Value))
		}
	}
	lines = append(lines, mdLine{}, mdLine{}.plain(when.UTC().Format(time.RFC3339)))
	return chunk(lines, MaxMessageLength)
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
	backoff := t.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err := t.post(ctx, body)
		if err == nil {
			return nil
		}
		var wait time.Duration
		var apiErr *APIError
		switch {
		case ctx.Err() != nil:
			return err
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
			wait = max(apiErr.RetryAfter, time.Second)
			if wait > t.cfg.MaxRetryAfter {
				return fmt.Errorf("%w (retry_after %v exceeds the %v we wait)", err, wait, t.cfg.MaxRetryAfter)
			}
		case errors.As(err, &apiErr) && apiErr.StatusCode < 500:
			return err // a request Telegram will never accept
		default: // 5xx or a network error
			wait = backoff
			backoff *= 2
		}
		if attempt >= t.cfg.MaxRetries {
			return fmt.Errorf("after %d attempts: %w", attempt+1, err)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("%w (no time left to retry in %v)", err, wait)
		}
		if serr := t.cfg.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", err, serr)
		}
	}
}

func (t *Telegram) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(body))
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
		if res.StatusCode >= 300 {
			return &APIError{StatusCode: res.StatusCode, Description: http.StatusText(res.StatusCode)}
		}
		return fmt.Errorf("telegram: unreadable response (HTTP %d)", res.StatusCode)
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
	if strings.Contains(err.Error(), t.cfg.Token) {
		return errors.New(t.scrub(err.Error()))
	}
	return err
}

func (t *Telegram) scrub(s string) string {
	return strings.ReplaceAll(s, t.cfg.Token, "<redacted>")
}
