package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeStripe speaks the part of Stripe's API the server uses, in Stripe's
// wire format: form-encoded requests, JSON objects, list envelopes, error
// bodies, idempotency keys (a replayed key returns the first response).
type fakeStripe struct {
	*httptest.Server
	mu        sync.Mutex
	transfers []map[string]any
	byKey     map[string]map[string]any
	accounts  []map[string]any // Connect accounts created
	links     int              // account links created
	// sales makes the balance endpoints answer: one $100 charge (a $3.20
	// fee) at noon UTC of every day (at midnight with earlySales, so that
	// today's spend is never empty); failCosts makes them answer 500.
	sales, earlySales, failCosts bool
	// hang, when non-nil, is waited on after a transfer is recorded and
	// before it is answered: the transfer is made, the answer delayed (or
	// lost if the client dies).
	hang chan struct{}
	// holdAccounts, when non-nil, is waited on after a Connect account is
	// recorded and before it is answered; accountMade is sent the
	// account's id first.
	holdAccounts chan struct{}
	accountMade  chan string
	deleted      []string // Connect accounts deleted
	accountReads int      // GET /v1/accounts/{id} calls
	// closed are Connect accounts Stripe refuses transfers to, as it does
	// a rejected or deleted account's.
	closed map[string]bool
	// returnURL and refreshURL are the last account link's.
	returnURL, refreshURL string
}

func newFakeStripe(t *testing.T) *fakeStripe {
	f := &fakeStripe{byKey: map[string]map[string]any{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hang != nil {
			close(f.hang)
			f.hang = nil
		}
		if f.holdAccounts != nil {
			close(f.holdAccounts)
			f.holdAccounts = nil
		}
		f.mu.Unlock()
		f.Close()
	})
	return f
}

// stripeAccountID is the shape of a Connect account id; Stripe answers
// any other transfer destination with "No such destination".
var stripeAccountID = regexp.MustCompile(`^acct_[A-Za-z0-9]+$`)

func stripeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"type":%q,"message":%q}}`, typ, msg)
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_test_") {
		stripeError(w, 401, "invalid_request_error", "Invalid API Key provided")
		return
	}
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	sales, earlySales, failCosts := f.sales, f.earlySales, f.failCosts
	f.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/account": // the platform's own
		fmt.Fprint(w, `{"id":"acct_platform","object":"account","type":"standard","charges_enabled":true,"payouts_enabled":true}`)
	case r.Method == "POST" && r.URL.Path == "/v1/transfers":
		f.mu.Lock()
		key := r.Header.Get("Idempotency-Key")
		if tr, ok := f.byKey[key]; ok && key != "" {
			f.mu.Unlock()
			_ = json.NewEncoder(w).Encode(tr)
			return
		}
		if dest := r.Form.Get("destination"); !stripeAccountID.MatchString(dest) || f.closed[dest] {
			f.mu.Unlock()
			stripeError(w, 400, "invalid_request_error", "No such destination: '"+dest+"'")
			return
		}
		amount, _ := strconv.ParseInt(r.Form.Get("amount"), 10, 64)
		tr := map[string]any{
			"id": fmt.Sprintf("tr_%d", len(f.transfers)+1), "object": "transfer", "amount": amount,
			"currency": r.Form.Get("currency"), "destination": r.Form.Get("destination"),
			"transfer_group": r.Form.Get("transfer_group"),
		}
		f.transfers = append(f.transfers, tr)
		if key != "" {
			f.byKey[key] = tr
		}
		hang := f.hang
		f.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		_ = json.NewEncoder(w).Encode(tr)
	case r.Method == "GET" && r.URL.Path == "/v1/transfers":
		f.mu.Lock()
		var data []map[string]any
		for _, tr := range f.transfers {
			if g := r.Form.Get("transfer_group"); g == "" || tr["transfer_group"] == g {
				data = append(data, tr)
			}
		}
		f.mu.Unlock()
		if data == nil {
			data = []map[string]any{}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/transfers", "has_more": false, "data": data})
	case r.Method == "GET" && (r.URL.Path == "/v1/balance" || r.URL.Path == "/v1/balance_transactions") && (sales || failCosts):
		if failCosts {
			stripeError(w, 500, "api_error", "An unknown error occurred")
			return
		}
		if r.URL.Path == "/v1/balance" {
			_ = json.NewEncoder(w).Encode(map[string]any{"object": "balance", "livemode": false,
				"available": []map[string]any{{"amount": 120000, "currency": "usd"}}, "pending": []map[string]any{{"amount": 9680, "currency": "usd"}}})
			return
		}
		gte, _ := strconv.ParseInt(r.Form.Get("created[gte]"), 10, 64)
		lt, _ := strconv.ParseInt(r.Form.Get("created[lt]"), 10, 64)
		data := []map[string]any{}
		for day := gte - gte%86400; day < lt; day += 86400 {
			at := day + 43200
			if earlySales {
				at = day // midnight: inside every period that starts the day
			}
			if at >= gte && at < lt {
				data = append(data, map[string]any{"id": fmt.Sprintf("txn_%d", at), "object": "balance_transaction", "amount": 10000, "fee": 320,
					"net": 9680, "currency": "usd", "type": "charge", "created": at})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/balance_transactions", "has_more": false, "data": data})
	case r.Method == "POST" && r.URL.Path == "/v1/accounts":
		f.mu.Lock()
		key := r.Header.Get("Idempotency-Key")
		if acct, ok := f.byKey[key]; ok && key != "" {
			f.mu.Unlock()
			_ = json.NewEncoder(w).Encode(acct)
			return
		}
		if r.Form.Get("type") != "express" || r.Form.Get("capabilities[transfers][requested]") != "true" {
			f.mu.Unlock()
			stripeError(w, 400, "invalid_request_error", "type must be express with the transfers capability")
			return
		}
		acct := map[string]any{
			"id": fmt.Sprintf("acct_%d", len(f.accounts)+1), "object": "account", "type": "express",
			"email": r.Form.Get("email"), "payouts_enabled": false, "charges_enabled": false,
			"metadata": map[string]string{"user_id": r.Form.Get("metadata[user_id]")},
		}
		f.accounts = append(f.accounts, acct)
		if key != "" {
			f.byKey[key] = acct
		}
		hold, made := f.holdAccounts, f.accountMade
		f.mu.Unlock()
		if hold != nil {
			made <- acct["id"].(string)
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		_ = json.NewEncoder(w).Encode(acct)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/accounts/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/accounts/")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.accountReads++
		for _, a := range f.accounts {
			if a["id"] == id && !slices.Contains(f.deleted, id) {
				_ = json.NewEncoder(w).Encode(a)
				return
			}
		}
		stripeError(w, 404, "invalid_request_error", "No such account: '"+id+"'")
	case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/v1/accounts/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/accounts/")
		f.mu.Lock()
		defer f.mu.Unlock()
		known := false
		for _, a := range f.accounts {
			known = known || a["id"] == id
		}
		if !known || slices.Contains(f.deleted, id) {
			stripeError(w, 404, "invalid_request_error", "No such account: '"+id+"'")
			return
		}
		f.deleted = append(f.deleted, id)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "account", "deleted": true})
	case r.Method == "POST" && r.URL.Path == "/v1/account_links":
		f.mu.Lock()
		defer f.mu.Unlock()
		acct := r.Form.Get("account")
		known := false
		for _, a := range f.accounts {
			known = known || a["id"] == acct
		}
		if !known || r.Form.Get("type") != "account_onboarding" || r.Form.Get("return_url") == "" || r.Form.Get("refresh_url") == "" {
			stripeError(w, 400, "invalid_request_error", "No such account, or missing return_url/refresh_url")
			return
		}
		f.links++
		f.returnURL, f.refreshURL = r.Form.Get("return_url"), r.Form.Get("refresh_url")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "account_link", "created": 1, "expires_at": 2,
			"url": "https://connect.stripe.com/setup/e/" + acct + "/" + strconv.Itoa(f.links)})
	default:
		stripeError(w, 404, "invalid_request_error", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+")")
	}
}

// linkURLs returns the last account link's return and refresh URLs.
func (f *fakeStripe) linkURLs() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.returnURL, f.refreshURL
}

// setCosts sets sales, earlySales and failCosts (under the lock: the
// handler reads them on its own goroutines).
func (f *fakeStripe) setCosts(sales, earlySales, failCosts bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sales, f.earlySales, f.failCosts = sales, earlySales, failCosts
}

// paid sums the transfers per destination.
func (f *fakeStripe) paid() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for _, tr := range f.transfers {
		out[tr["destination"].(string)] += tr["amount"].(int64)
	}
	return out
}

// finishOnboarding marks a Connect account as Stripe does once its owner
// finished onboarding: payouts enabled.
func (f *fakeStripe) finishOnboarding(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if a["id"] == id {
			a["payouts_enabled"], a["charges_enabled"] = true, true
		}
	}
}

// accountsRead counts GET /v1/accounts/{id} calls.
func (f *fakeStripe) accountsRead() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accountReads
}
