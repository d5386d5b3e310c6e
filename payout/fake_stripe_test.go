package payout_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/payout"
)

// fakeStripe implements POST/GET /v1/transfers with Stripe's idempotency
// semantics (same key and parameters: the first response replayed; same
// key, other parameters: 400 idempotency_error) and its error bodies.
type fakeStripe struct {
	*httptest.Server
	mu        sync.Mutex
	accounts  map[string]bool
	transfers []map[string]any
	byKey     map[string]struct {
		params string
		body   []byte
	}
	keysByGroup map[string]map[string]bool
	// fail is consumed one entry per POST: "500", "429", "drop" (create
	// the transfer, then cut the connection before answering).
	fail []string
}

func newFakeStripe(t *testing.T, accounts ...string) *fakeStripe {
	f := &fakeStripe{accounts: map[string]bool{}, byKey: map[string]struct {
		params string
		body   []byte
	}{}, keysByGroup: map[string]map[string]bool{}}
	for _, a := range accounts {
		f.accounts[a] = true
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func stripeErr(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": typ, "code": code, "message": msg}})
	w.Write(b)
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/v1/transfers" {
		stripeErr(w, 404, "invalid_request_error", "", "Unrecognized request URL")
		return
	}
	if r.Method == http.MethodGet {
		group := r.URL.Query().Get("transfer_group")
		var data []map[string]any
		for _, t := range f.transfers {
			if t["transfer_group"] == group {
				data = append(data, t)
			}
		}
		b, _ := json.Marshal(map[string]any{"object": "list", "url": "/v1/transfers", "has_more": false, "data": data})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	_ = r.ParseForm()
	key := r.Header.Get("Idempotency-Key")
	group := r.PostForm.Get("transfer_group")
	if f.keysByGroup[group] == nil {
		f.keysByGroup[group] = map[string]bool{}
	}
	f.keysByGroup[group][key] = true
	params := canonical(r.PostForm)
	if prev, ok := f.byKey[key]; ok && key != "" {
		if prev.params != params {
			stripeErr(w, 400, "idempotency_error", "", "Keys for idempotent requests can only be used with the same parameters they were first used with.")
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.Write(prev.body)
		return
	}
	mode := ""
	if len(f.fail) > 0 {
		mode, f.fail = f.fail[0], f.fail[1:]
	}
	switch mode {
	case "500":
		stripeErr(w, 500, "api_error", "", "An unknown error occurred")
		return
	case "429":
		stripeErr(w, 429, "invalid_request_error", "rate_limit", "Request rate limit exceeded.")
		return
	}
	dest := r.PostForm.Get("destination")
	if !f.accounts[dest] {
		stripeErr(w, 400, "invalid_request_error", "resource_missing", fmt.Sprintf("No such destination: '%s'", dest))
		return
	}
	amount, _ := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
	tr := map[string]any{"id": fmt.Sprintf("tr_%d", len(f.transfers)+1), "object": "transfer", "amount": amount,
		"currency": r.PostForm.Get("currency"), "destination": dest, "transfer_group": group,
		"metadata": map[string]string{"payout_id": r.PostForm.Get("metadata[payout_id]")}}
	f.transfers = append(f.transfers, tr)
	body, _ := json.Marshal(tr)
	if key != "" {
		f.byKey[key] = struct {
			params string
			body   []byte
		}{params, body}
	}
	if mode == "drop" {
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func canonical(v url.Values) string {
	var keys []string
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + strings.Join(v[k], ",") + "&")
	}
	return b.String()
}

// paid sums transfers per destination and currency.
func (f *fakeStripe) paid() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for _, t := range f.transfers {
		out[t["destination"].(string)+" "+strings.ToUpper(t["currency"].(string))] += t["amount"].(int64)
	}
	return out
}

func (f *fakeStripe) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.transfers)
}

func stripePayouter(f *fakeStripe) *payout.StripeTransfers {
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(f.URL), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	p, _ := payout.NewStripeTransfers(payout.StripeTransfersConfig{Client: stripe.NewClient("sk_test_levqor", stripe.WithBackends(&stripe.Backends{API: b, Connect: b, Uploads: b}))})
	return p
}

// allow lets transfers reach account (a connected account the fake knows).
func (f *fakeStripe) allow(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[account] = true
}
