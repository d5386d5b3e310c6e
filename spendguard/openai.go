package spendguard

import (
	"github.com/levqor/levqor/money"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultOpenAIBaseURL is the OpenAI API root.
const DefaultOpenAIBaseURL = "https://api.openai.com"

// OpenAI reports the organization's costs for the period from the Costs
// API (GET /v1/organization/costs, daily buckets, following next_page),
// which needs an admin key. Amounts are summed per currency and rounded to
// the cent once, at the end.
type OpenAI struct {
	// AdminKey is sent as a Bearer token; it never appears in errors.
	AdminKey string
	// BaseURL defaults to DefaultOpenAIBaseURL.
	BaseURL string
	// Client defaults to an http.Client with a 30s timeout.
	Client *http.Client
	// MaxRetries bounds retries after 429 and 5xx. Default 3.
	MaxRetries int
	// Sleep waits before a retry. Default: a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ Source = (*OpenAI)(nil)

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

// maxPages guards against a server that never stops paginating.
const maxPages = 1000

// Lines implements Source.
func (o *OpenAI) Lines(ctx context.Context, p Period) ([]Line, error) {
	if o.AdminKey == "" {
		return nil, errors.New("openai: no admin key configured")
	}
	base := o.BaseURL
	if base == "" {
		base = DefaultOpenAIBaseURL
	}
	totals := map[string]float64{}
	cursor := ""
	for range maxPages {
		q := url.Values{}
		q.Set("start_time", strconv.FormatInt(p.Start.Unix(), 10))
		q.Set("end_time", strconv.FormatInt(p.End.Unix(), 10))
		q.Set("bucket_width", "1d")
		q.Set("limit", "31")
		if cursor != "" {
			q.Set("page", cursor)
		}
		var page costsPage
		if err := o.get(ctx, strings.TrimRight(base, "/")+"/v1/organization/costs?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, b := range page.Data {
			for _, r := range b.Results {
				totals[strings.ToUpper(r.Amount.Currency)] += r.Amount.Value
			}
		}
		if !page.HasMore || page.NextPage == "" {
			var out []Line
			for _, cur := range slices.Sorted(maps.Keys(totals)) {
				scale := math.Pow10(money.Decimals(cur))
				out = append(out, Line{Label: "openai usage", Kind: KindCost, Amount: money.New(int64(math.Round(totals[cur]*scale)), cur)})
			}
			if len(out) == 0 {
				out = []Line{{Label: "openai usage", Kind: KindCost, Amount: money.New(0, "USD")}}
			}
			return out, nil
		}
		cursor = page.NextPage
	}
	return nil, fmt.Errorf("openai: more than %d pages of costs", maxPages)
}

func (o *OpenAI) get(ctx context.Context, u string, into any) error {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	retries := o.MaxRetries
	if retries == 0 {
		retries = 3
	}
	sleep := o.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("openai: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+o.AdminKey)
		res, err := client.Do(req)
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
		var apiErr struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &apiErr)
		msg := o.scrub(apiErr.Error.Message)
		if msg == "" {
			msg = http.StatusText(res.StatusCode)
		}
		err = fmt.Errorf("openai: HTTP %d: %s", res.StatusCode, msg)
		retryable := res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500
		if !retryable || attempt >= retries {
			return err
		}
		wait := backoff
		if s, perr := strconv.Atoi(res.Header.Get("Retry-After")); perr == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		backoff *= 2
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", err, serr)
		}
	}
}

func (o *OpenAI) scrub(s string) string {
	if o.AdminKey == "" {
		return s
	}
	return strings.ReplaceAll(s, o.AdminKey, "<redacted>")
}
