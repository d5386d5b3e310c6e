package sitemap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/levqor/levqor/internal/backoff"
)

// IndexNow defaults.
const (
	// DefaultIndexNowEndpoint is the shared IndexNow endpoint; it forwards
	// to every participating search engine.
	DefaultIndexNowEndpoint = "https://api.indexnow.org/indexnow"
	// MaxIndexNowBatch is the most URLs one IndexNow request may carry.
	MaxIndexNowBatch = 10_000
	// DefaultIndexNowAttempts is how many times a batch is tried when the
	// engine answers 429 or 5xx.
	DefaultIndexNowAttempts = 4
	// DefaultIndexNowMaxWait caps each wait between attempts, including a
	// Retry-After the engine asks for; a longer one is not waited out.
	DefaultIndexNowMaxWait = time.Minute
	// DefaultIndexNowTimeout bounds each request.
	DefaultIndexNowTimeout = 30 * time.Second
)

// Errors.
var (
	// ErrInvalidKey: an IndexNow key is 8 to 128 characters of a-z, A-Z,
	// 0-9 and '-'.
	ErrInvalidKey = errors.New("sitemap: invalid IndexNow key")
	// ErrRejected: the engine refused the submission (400, 403, 422).
	ErrRejected = errors.New("sitemap: IndexNow rejected the submission")
	// ErrRateLimited: the engine kept answering 429.
	ErrRateLimited = errors.New("sitemap: IndexNow rate limit")
)

// ValidKey checks an IndexNow key.
func ValidKey(key string) error {
	if len(key) < 8 || len(key) > 128 {
		return fmt.Errorf("%w: %d characters, want 8 to 128", ErrInvalidKey, len(key))
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: only a-z, A-Z, 0-9 and '-' are allowed", ErrInvalidKey)
		}
	}
	return nil
}

// IndexNowConfig configures an IndexNow client.
type IndexNowConfig struct {
	// Key is the site's IndexNow key. Required (see ValidKey).
	Key string
	// KeyLocation is the absolute URL where the site serves Key as
	// text/plain, on the submitted URLs' host. Required.
	KeyLocation string
	// Endpoint receives the submissions. Default DefaultIndexNowEndpoint.
	Endpoint string
	// Client sends the requests. Default: an http.Client with
	// DefaultIndexNowTimeout.
	Client *http.Client
	// Attempts per batch on 429 and 5xx. Default DefaultIndexNowAttempts.
	Attempts int
	// MaxWait caps each wait between attempts. Default
	// DefaultIndexNowMaxWait.
	MaxWait time.Duration
}

// IndexNow submits URLs to an IndexNow endpoint.
type IndexNow struct {
	cfg   IndexNowConfig
	host  string
	sleep backoff.SleepFunc
}

// NewIndexNow validates cfg.
func NewIndexNow(cfg IndexNowConfig) (*IndexNow, error) {
	if err := ValidKey(cfg.Key); err != nil {
		return nil, err
	}
	loc, err := checkURL(cfg.KeyLocation)
	if err != nil {
		return nil, fmt.Errorf("sitemap: IndexNowConfig.KeyLocation: %w", err)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultIndexNowEndpoint
	}
	if _, err := checkURL(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("sitemap: IndexNowConfig.Endpoint: %w", err)
	}
	if cfg.Attempts < 0 || cfg.MaxWait < 0 {
		return nil, errors.New("sitemap: IndexNowConfig.Attempts and MaxWait must not be negative")
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultIndexNowAttempts
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultIndexNowMaxWait
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultIndexNowTimeout}
	}
	return &IndexNow{cfg: cfg, host: loc.Host, sleep: backoff.Sleep}, nil
}

// Result is what Submit did.
type Result struct {
	// Submitted counts the URLs the engine accepted.
	Submitted int
	// Requests counts the HTTP requests made, retries included.
	Requests int
}

// Submit sends urls (all on KeyLocation's host) in batches of at most
// MaxIndexNowBatch. It stops at the first batch that fails: ErrRejected
// with the engine's reason, ErrRateLimited, or the last network error;
// Result says how far it got.
func (c *IndexNow) Submit(ctx context.Context, urls []string) (Result, error) {
	var res Result
	if len(urls) == 0 {
		return res, errors.New("sitemap: no URLs to submit")
	}
	for _, s := range urls {
		u, err := checkURL(s)
		if err != nil {
			return res, err
		}
		if u.Host != c.host {
			return res, fmt.Errorf("%w: %q is not on %s, the key's host", ErrInvalidURL, truncate(s, 100), c.host)
		}
	}
	for start := 0; start < len(urls); start += MaxIndexNowBatch {
		batch := urls[start:min(start+MaxIndexNowBatch, len(urls))]
		body, err := json.Marshal(map[string]any{"host": c.host, "key": c.cfg.Key, "keyLocation": c.cfg.KeyLocation, "urlList": batch})
		if err != nil {
			return res, err
		}
		p := backoff.Policy{Attempts: c.cfg.Attempts, Initial: time.Second, Max: c.cfg.MaxWait}
		err = backoff.Do(ctx, p, c.sleep, func(int) error {
			res.Requests++
			return c.post(ctx, body)
		})
		if err != nil {
			return res, err
		}
		res.Submitted += len(batch)
	}
	return res, nil
}

func (c *IndexNow) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return backoff.Retryable(fmt.Errorf("sitemap: IndexNow: %w", err), 0)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	reason := strings.TrimSpace(strings.ToValidUTF8(string(msg), "?"))
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusAccepted:
		return nil
	case code == http.StatusBadRequest, code == http.StatusForbidden, code == http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %d %s%s", ErrRejected, code, rejection(code), detail(reason))
	case code == http.StatusTooManyRequests:
		after, _ := backoff.RetryAfter(resp.Header, time.Now())
		return backoff.Retryable(fmt.Errorf("%w: 429 Too Many Requests%s", ErrRateLimited, detail(reason)), after)
	case code >= 500:
		after, _ := backoff.RetryAfter(resp.Header, time.Now())
		return backoff.Retryable(fmt.Errorf("sitemap: IndexNow: %d %s%s", code, http.StatusText(code), detail(reason)), after)
	default:
		return fmt.Errorf("sitemap: IndexNow: unexpected %d %s%s", code, http.StatusText(code), detail(reason))
	}
}

// rejection explains IndexNow's refusal codes (indexnow.org/documentation).
func rejection(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "Bad request (invalid format)"
	case http.StatusForbidden:
		return "Forbidden (the key was not found at keyLocation, or does not match)"
	default:
		return "Unprocessable Entity (URLs not on the host, or the key does not match the schema)"
	}
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return ": " + truncate(s, 200)
}
