package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	name     string
	reqs     int
	errs     int64
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // the server processes' CPU time per request; 0 if unknown
}

// hammerReq sends method url (with a JSON body unless "") from conc
// clients for d and measures each request.
func hammerReq(name, method, url, token, body string, conc int, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				var rb io.Reader
				if body != "" {
					rb = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, url, rb)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := result{name: name, reqs: len(lat), errs: errs.Load(), rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// loginBody is the load test user's credentials, whose token the GET
// scenarios send.
const loginBody = `{"email":"load@example.com","password":"load test password"}`

// loginScenarioBody is the account the login scenarios log in to, over
// and over: another account than loginBody's, as an account keeps only
// its newest LEVQOR_MAX_SESSIONS logins usable, and the GET scenarios'
// token must stay valid.
const loginScenarioBody = `{"email":"logins@example.com","password":"load test password"}`

// loginConcurrency is the number of clients logging in at once: the
// server hashes GOMAXPROCS passwords at a time and answers 503 to requests
// queued over 2 s, so more clients measure the queue, not the login.
const loginConcurrency = 4

// login registers loginBody's and loginScenarioBody's accounts and returns
// an access token of the first.
func login(base string) (string, error) {
	body := loginBody
	for _, b := range []string{loginScenarioBody, body} {
		res, err := http.Post(base+"/api/auth/register", "application/json", strings.NewReader(b))
		if err != nil {
			return "", err
		}
		res.Body.Close()
	}
	res, err := http.Post(base+"/api/auth/login", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("login failed (%d)", res.StatusCode)
	}
	return out.AccessToken, nil
}
