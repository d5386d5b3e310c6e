package spendguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/internal/backoff"
	"github.com/levqor/levqor/money"
)

// Defaults for OpenAIConfig (and, for pages, StripeConfig).
const (
	DefaultOpenAIBaseURL = "https://api.openai.com"
	DefaultMaxRetries    = 3
	// DefaultMaxWait caps any wait between retries, including one a
	// server asks for with Retry-After; a longer request fails the source
	// (spend unknown) instead of sleeping.
	DefaultMaxWait = time.Minute
	// DefaultMaxPages caps pagination: a server that keeps answering
	// has_more fails the source instead of being followed forever.
	DefaultMaxPages = 100
	defaultTimeout  = 30 * time.Second
)

// OpenAIConfig configures an OpenAI source.
type OpenAIConfig struct {
	// AdminKey is sent as a Bearer token; it never appears in errors.
	// Required.
	AdminKey string
	// BaseURL is the API root. Default DefaultOpenAIBaseURL.
	BaseURL string
	// Client sends the requests. Default: an http.Client with a 30s timeout.
	Client *http.Client
	// MaxRetries bounds retries after 429 and 5xx. Default
	// DefaultMaxRetries (3); negative: no retry.
	MaxRetries int
	// MaxWait caps each wait between retries. Default DefaultMaxWait (1m).
	MaxWait time.Duration
	// MaxPages caps the pages followed. Default DefaultMaxPages (100).
	MaxPages int
}

// OpenAI reports the organization's costs for the period from the Costs
// API (GET /v1/organization/costs, daily buckets, following next_page),
// which needs an admin key. Amounts are summed per currency and converted
// to minor units once, at the end, checked: a non-finite or out-of-range
// amount fails the source (unknown), never a wrapped number.
type OpenAI struct {
	cfg   OpenAIConfig
	sleep backoff.SleepFunc
}

var _ Source = (*OpenAI)(nil)

// NewOpenAI validates cfg.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.AdminKey == "" {
		return nil, errors.New("spendguard: OpenAIConfig.AdminKey is required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultOpenAIBaseURL
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("spendguard: OpenAIConfig.BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: defaultTimeout}
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.MaxWait < 0 || cfg.MaxPages < 0 {
		return nil, errors.New("spendguard: OpenAIConfig.MaxWait and MaxPages must not be negative")
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	return &OpenAI{cfg: cfg, sleep: backoff.Sleep}, nil
}

// Name implements Source.
func (o *OpenAI) Name() string { return "openai" }

type costsPage struct {
	Data []struct {
		Results []struct {
			Amount struct {
				Value    float64 `json:"value"`
				Currency string  `json:"currency"`
			} `json:"amount"`
		} `json:"results"`
	} `json:"data"`
	HasMore  bool   `json:"has_more"`
	NextPage string `json:"next_page"`
}

// Lines implements Source.
func (o *OpenAI) Lines(ctx context.Context, p Period) ([]Line, error) {
	totals := map[string]float64{}
	cursor := ""
	for range o.cfg.MaxPages {
		q := url.Values{}
		q.Set("start_time", strconv.FormatInt(p.Start.Unix(), 10))
		q.Set("end_time", strconv.FormatInt(p.End.Unix(), 10))
		q.Set("bucket_width", "1d")
		q.Set("limit", "31")
		if cursor != "" {
			q.Set("page", cursor)
		}
		var page costsPage
		if err := o.get(ctx, strings.TrimRight(o.cfg.BaseURL, "/")+"/v1/organization/costs?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, b := range page.Data {
			for _, r := range b.Results {
				totals[strings.ToUpper(r.Amount.Currency)] += r.Amount.Value
			}
		}
		if !page.HasMore || page.NextPage == "" {
			return costLines(totals)
		}
		cursor = page.NextPage
	}
	return nil, fmt.Errorf("openai: more than %d pages of costs (MaxPages)", o.cfg.MaxPages)
}

// costLines converts summed float amounts to checked minor units.
func costLines(totals map[string]float64) ([]Line, error) {
	var out []Line
	for _, cur := range slices.Sorted(maps.Keys(totals)) {
		m, err := money.FromMajor(totals[cur], cur)
		if err != nil {
			return nil, fmt.Errorf("openai: cost in %s: %w", cur, err)
		}
		out = append(out, Line{Label: "openai usage", Kind: KindCost, Amount: m})
	}
	if len(out) == 0 {
		out = []Line{{Label: "openai usage", Kind: KindCost, Amount: money.New(0, "USD")}}
	}
	return out, nil
}

func (o *OpenAI) get(ctx context.Context, u string, into any) error {
	policy := backoff.Policy{Attempts: o.cfg.MaxRetries + 1, Initial: time.Second, Max: o.cfg.MaxWait}
	return backoff.Do(ctx, policy, o.sleep, func(int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("openai: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+o.cfg.AdminKey)
		res, err := o.cfg.Client.Do(req)
		if err != nil {
			return fmt.Errorf("openai: %s", o.scrub(err.Error()))
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("openai: read response: %w", err)
		}
		if res.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, into); err != nil {
				return fmt.Errorf("openai: malformed costs page: %w", err)
			}
			return nil
		}
		err = fmt.Errorf("openai: HTTP %d: %s", res.StatusCode, o.apiMessage(res.StatusCode, body))
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
			after, _ := backoff.RetryAfter(res.Header, time.Now())
			return backoff.Retryable(err, after)
		}
		return err
	})
}

// apiMessage is the error message of an OpenAI error body, scrubbed.
func (o *OpenAI) apiMessage(status int, body []byte) string {
	var apiErr struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &apiErr)
	if msg := o.scrub(apiErr.Error.Message); msg != "" {
		return msg
	}
	return http.StatusText(status)
}

func (o *OpenAI) scrub(s string) string {
	return strings.ReplaceAll(s, o.cfg.AdminKey, "<redacted>")
}
