package tokens_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/internal/testhttp"
	"github.com/levqor/levqor/tokens"
)

// failingStore answers every revocation check with an error, as a dead
// database would.
type failingStore struct{ tokens.Store }

func (failingStore) Revoked(context.Context, string, string) (bool, error) {
	return false, errors.New("connection refused")
}

func whoami(w http.ResponseWriter, r *http.Request) {
	c, ok := tokens.FromContext(r.Context())
	if !ok {
		_, _ = io.WriteString(w, "anonymous")
		return
	}
	_, _ = io.WriteString(w, c.Subject)
}

func get(t *testing.T, url, auth string) (*http.Response, string) {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return testhttp.Do(t, http.MethodGet, url, "", h)
}

func TestMiddleware(t *testing.T) {
	ctx := context.Background()
	ks := keySet(t, edKey(t))
	store := memStore(t)
	m := newManager(t, tokens.Config{Keys: ks, Store: store})
	p, _ := m.Issue(ctx, "alice")
	revoked, _ := m.Issue(ctx, "bob")
	_ = m.Revoke(ctx, revoked.AccessToken)

	mux := http.NewServeMux()
	mux.Handle("/required", tokens.RequireAuth(m)(http.HandlerFunc(whoami)))
	mux.Handle("/optional", tokens.OptionalAuth(m)(http.HandlerFunc(whoami)))
	down := newManager(t, tokens.Config{Keys: ks, Store: failingStore{store}})
	mux.Handle("/down", tokens.RequireAuth(down)(http.HandlerFunc(whoami)))
	open := newManager(t, tokens.Config{Keys: ks, Store: failingStore{store}, FailOpen: true})
	mux.Handle("/failopen", tokens.RequireAuth(open)(http.HandlerFunc(whoami)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		path, auth string
		status     int
		body       string // substring
		challenge  string // exact WWW-Authenticate, "" for none
	}{
		{"/required", "Bearer " + p.AccessToken, 200, "alice", ""},
		{"/required", "bearer " + p.AccessToken, 200, "alice", ""},
		{"/required", "", 401, `"missing_token"`, "Bearer"},
		{"/required", "Basic dXNlcjpwYXNz", 401, `"missing_token"`, "Bearer"},
		{"/required", "Bearer ", 401, `"missing_token"`, "Bearer"},
		{"/required", "Bearer garbage", 401, `"invalid_token"`, `Bearer error="invalid_token"`},
		{"/required", "Bearer " + p.RefreshToken, 401, `"invalid_token"`, `Bearer error="invalid_token"`},
		{"/required", "Bearer " + revoked.AccessToken, 401, "token revoked", `Bearer error="invalid_token"`},
		{"/optional", "", 200, "anonymous", ""},
		{"/optional", "Bearer " + p.AccessToken, 200, "alice", ""},
		{"/optional", "Bearer garbage", 401, `"invalid_token"`, `Bearer error="invalid_token"`},
		{"/down", "Bearer " + p.AccessToken, 503, "temporarily_unavailable", ""},
		{"/failopen", "Bearer " + p.AccessToken, 200, "alice", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+strings.SplitN(tc.auth+" ", " ", 2)[0]+" "+tc.body, func(t *testing.T) {
			res, body := get(t, srv.URL+tc.path, tc.auth)
			if res.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %q, want %d containing %q", res.StatusCode, body, tc.status, tc.body)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			wantRetry := "" // only an outage asks the client to come back
			if tc.status == 503 {
				wantRetry = "1"
			}
			if got := res.Header.Get("Retry-After"); got != wantRetry {
				t.Fatalf("Retry-After = %q, want %q", got, wantRetry)
			}
			if tc.status != 200 {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] == "" {
					t.Fatalf("error body is not JSON with an error field: %q", body)
				}
				if strings.Contains(body, p.AccessToken) {
					t.Fatal("token echoed in the response")
				}
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	ek, ek2 := edKey(t), edKey(t)
	ks := keySet(t, ek, hmacKey(t, "hs"), ek2)
	srv := httptest.NewServer(tokens.JWKSHandler(ks))
	defer srv.Close()
	res, body := get(t, srv.URL, "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var doc struct{ Keys []tokens.JWK }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the 2 Ed25519 keys (never the HMAC secret): %s", len(doc.Keys), body)
	}
	if strings.Contains(body, `"hs"`) {
		t.Fatal("HMAC key listed in JWKS")
	}
	// The published key verifies a token the Manager signed.
	m := newManager(t, tokens.Config{Keys: ks, Store: memStore(t)})
	p, _ := m.Issue(context.Background(), "u")
	var jwk tokens.JWK
	for _, k := range doc.Keys {
		if k.KeyID == kid(t, p.AccessToken) {
			jwk = k
		}
	}
	x, err := base64.RawURLEncoding.DecodeString(jwk.X)
	if err != nil || jwk.KeyType != "OKP" || jwk.Curve != "Ed25519" || jwk.Alg != "EdDSA" {
		t.Fatalf("bad JWK %+v (%v)", jwk, err)
	}
	if _, err := jwt.Parse(p.AccessToken, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation()); err != nil {
		t.Fatalf("JWKS key does not verify the token: %v", err)
	}
	post, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d", post.StatusCode)
	}
}

func TestMemoryStoreJanitor(t *testing.T) {
	clk := testclock.New(fixedNow)
	s, _ := tokens.NewMemoryStore(tokens.MemoryConfig{CleanupInterval: time.Millisecond, Now: clk.Now})
	ctx := context.Background()
	_ = s.CreateFamily(ctx, "f", "u", "refresh", fixedNow.Add(time.Hour))
	_ = s.RevokeToken(ctx, "f", "jti", fixedNow.Add(time.Minute))
	clk.Advance(2 * time.Minute)
	// The janitor runs on a real ticker; poll its effect for a bounded time.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, _ := s.Revoked(ctx, "f", "jti"); !r {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor did not drop the expired revocation")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// countingVerifier counts verifications.
type countingVerifier struct {
	tokens.Verifier
	n int
}

func (c *countingVerifier) Verify(ctx context.Context, token string) (*tokens.Claims, error) {
	c.n++
	return c.Verifier.Verify(ctx, token)
}

// TestRequireAuthReusesClaims: OptionalAuth in front (for rate-limit keys)
// and RequireAuth on the route verify once per request, not twice.
func TestRequireAuthReusesClaims(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: memStore(t)})
	p, _ := m.Issue(ctx, "alice")
	cv := &countingVerifier{Verifier: m}
	h := tokens.OptionalAuth(cv)(tokens.RequireAuth(cv)(http.HandlerFunc(whoami)))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+p.AccessToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "alice" || cv.n != 1 {
		t.Fatalf("status %d body %q, %d verifications (want 1)", rec.Code, rec.Body, cv.n)
	}
}
