package spendguard_test

import (
	"github.com/levqor/levqor/money"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/spendguard"
)

const stripeKey = "sk_test_51FakeKeyForLevqorTestsOnly"

// fakeStripe serves /v1/balance and a paginated /v1/balance_transactions
// the way Stripe does (list objects, has_more, starting_after, error bodies).
func fakeStripe(t *testing.T, failBalance int) *httptest.Server {
	var balanceCalls atomic.Int64
	txns := []map[string]any{}
	for i := range 25 {
		typ := "charge"
		if i%5 == 4 {
			typ = "refund"
		}
		txns = append(txns, map[string]any{"id": "txn_" + strconv.Itoa(i), "object": "balance_transaction", "amount": 2000, "fee": 88, "net": 1912, "currency": "usd", "type": typ, "created": 1764028800 + i})
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+stripeKey {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****Only"}}`)
			return
		}
		switch r.URL.Path {
		case "/v1/balance":
			if int(balanceCalls.Add(1)) <= failBalance {
				// A lock timeout is the 429 Stripe says is safe to retry.
				w.WriteHeader(429)
				fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}}`)
				return
			}
			fmt.Fprint(w, `{"object":"balance","available":[{"amount":125000,"currency":"usd"}],"pending":[{"amount":4200,"currency":"usd"}],"livemode":false}`)
		case "/v1/balance_transactions":
			q := r.URL.Query()
			if q.Get("created[gte]") == "" || q.Get("created[lt]") == "" {
				w.WriteHeader(400)
				fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"missing created range"}}`)
				return
			}
			start := 0
			if after := q.Get("starting_after"); after != "" {
				n, _ := strconv.Atoi(strings.TrimPrefix(after, "txn_"))
				start = n + 1
			}
			end := min(start+10, len(txns)) // pages of 10 whatever limit says
			body, _ := json.Marshal(map[string]any{"object": "list", "url": "/v1/balance_transactions", "has_more": end < len(txns), "data": txns[start:end]})
			w.Write(body)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}`)
		}
	}))
}

func stripeClient(url, key string, retries int64) *stripe.Client {
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return stripe.NewClient(key, stripe.WithBackends(&stripe.Backends{API: b, Connect: b, Uploads: b}))
}

func TestStripeSource(t *testing.T) {
	srv := fakeStripe(t, 1)
	defer srv.Close()
	src, _ := spendguard.NewStripe(spendguard.StripeConfig{Client: stripeClient(srv.URL, stripeKey, 2)})
	lines, err := src.Lines(context.Background(), spendguard.Period{Start: day, End: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, l := range lines {
		got[l.Label] += l.Amount.Amount
	}
	// 25 transactions over 3 pages: 20 charges of $20, fees of $0.88 on all 25.
	if got["available balance"] != 125000 || got["pending balance"] != 4200 || got["revenue"] != 40000 || got["stripe fees"] != 2200 {
		t.Fatalf("lines %+v", lines)
	}
	bad, _ := spendguard.NewStripe(spendguard.StripeConfig{Client: stripeClient(srv.URL, "sk_test_wrong", 0)})
	if _, err := bad.Lines(context.Background(), spendguard.Period{Start: day, End: day.Add(time.Hour)}); err == nil || !strings.Contains(err.Error(), "Invalid API Key") {
		t.Fatalf("err = %v", err)
	}
}

const adminKey = "sk-admin-levqor-test-0000"

func fakeOpenAI(t *testing.T, script ...int) (*httptest.Server, *[]string) {
	var pages []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		calls++
		if calls <= len(script) && script[calls-1] != 200 {
			code := script[calls-1]
			if code == 429 {
				w.Header().Set("Retry-After", "7")
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":{"message":"Rate limit reached for organization","type":"requests","code":"rate_limit_exceeded"}}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+adminKey {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`, r.Header.Get("Authorization")[7:])
			return
		}
		if r.URL.Path != "/v1/organization/costs" || r.URL.Query().Get("bucket_width") != "1d" || r.URL.Query().Get("start_time") == "" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"message":"bad query","type":"invalid_request_error"}}`)
			return
		}
		page := r.URL.Query().Get("page")
		pages = append(pages, page)
		bucket := func(v float64) map[string]any {
			return map[string]any{"object": "bucket", "start_time": 1764028800, "end_time": 1764115200, "results": []any{
				map[string]any{"object": "organization.costs.result", "amount": map[string]any{"value": v, "currency": "usd"}, "line_item": nil, "project_id": nil},
			}}
		}
		var body map[string]any
		switch page {
		case "":
			body = map[string]any{"object": "page", "data": []any{bucket(1.005), bucket(2.5)}, "has_more": true, "next_page": "page_AAA"}
		case "page_AAA":
			body = map[string]any{"object": "page", "data": []any{bucket(0.0049)}, "has_more": false, "next_page": nil}
		}
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &pages
}

func TestOpenAISource(t *testing.T) {
	p := spendguard.Period{Start: day, End: day.Add(24 * time.Hour)}
	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

	srv, pages := fakeOpenAI(t, 429, 500)
	o, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: adminKey, BaseURL: srv.URL})
	spendguard.SetSleep(o, sleep)
	lines, err := o.Lines(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// 1.005 + 2.5 + 0.0049 = 3.5099 dollars → 351 cents.
	if len(lines) != 1 || lines[0].Amount != (money.Money{Amount: 351, Currency: "USD"}) {
		t.Fatalf("lines %+v", lines)
	}
	if strings.Join(*pages, ",") != ",page_AAA" {
		t.Fatalf("pages requested %q", *pages)
	}
	if len(waits) != 2 || waits[0] != 7*time.Second || waits[1] != 2*time.Second {
		t.Fatalf("waits %v: want Retry-After 7s then backoff", waits)
	}

	srv2, _ := fakeOpenAI(t)
	wrong, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: "sk-admin-WRONG-secret", BaseURL: srv2.URL})
	spendguard.SetSleep(wrong, sleep)
	_, err = wrong.Lines(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "WRONG-secret") {
		t.Fatalf("err = %v (must not contain the key)", err)
	}

	srv3, _ := fakeOpenAI(t, 429, 429, 429, 429, 429)
	limited, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: adminKey, BaseURL: srv3.URL, MaxRetries: 2})
	spendguard.SetSleep(limited, sleep)
	if _, err := limited.Lines(context.Background(), p); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("err = %v", err)
	}
}

func TestReportJSON(t *testing.T) {
	src := &fixedSource{name: "api"}
	src.set(1234, nil)
	broken := &fixedSource{name: "openai"}
	broken.set(0, fmt.Errorf("HTTP 503"))
	r := spendguard.BuildReport(context.Background(), []spendguard.Source{src, broken}, spendguard.Period{Start: day, End: day.Add(time.Hour)}, day)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if back["complete"] != false || !bytes.Contains(b, []byte(`"costs":{"amount":1234,"currency":"USD"}`)) || !bytes.Contains(b, []byte(`"error":"HTTP 503"`)) {
		t.Fatalf("%s", b)
	}
	var text bytes.Buffer
	_ = r.WriteText(&text)
	if !strings.Contains(text.String(), "INCOMPLETE") {
		t.Fatalf("%s", text.String())
	}
}
