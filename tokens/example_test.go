package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/levqor/levqor/tokens"
)

func Example() {
	ctx := context.Background()
	key, _ := tokens.GenerateEd25519Key()
	keys, _ := tokens.NewKeySet(key)
	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
	defer store.Close()
	m, _ := tokens.New(tokens.Config{Keys: keys, Store: store, RefreshGrace: -1})

	pair, _ := m.Issue(ctx, "user-42")
	claims, _ := m.Verify(ctx, pair.AccessToken)
	fmt.Println("subject:", claims.Subject, "type:", claims.Type)

	next, _ := m.Refresh(ctx, pair.RefreshToken)
	fmt.Println("rotated:", next.RefreshToken != pair.RefreshToken)

	// Replaying the retired refresh token revokes the whole family.
	_, err := m.Refresh(ctx, pair.RefreshToken)
	fmt.Println("replay:", errors.Is(err, tokens.ErrReused))
	_, err = m.Verify(ctx, next.AccessToken)
	fmt.Println("newest access token:", errors.Is(err, tokens.ErrRevoked))
	// Output:
	// subject: user-42 type: at+jwt
	// rotated: true
	// replay: true
	// newest access token: true
}

func ExampleManager_Verify_expired() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key, _ := tokens.NewHMACKey("2026-01", []byte("an example secret of at least 32 bytes"))
	keys, _ := tokens.NewKeySet(key)
	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
	defer store.Close()
	m, _ := tokens.New(tokens.Config{Keys: keys, Store: store, Now: func() time.Time { return now }})

	pair, _ := m.Issue(context.Background(), "user-42")
	now = now.Add(16 * time.Minute)
	_, err := m.Verify(context.Background(), pair.AccessToken)
	fmt.Println(errors.Is(err, tokens.ErrExpired))
	// Output: true
}

// ExampleRequireAuth protects a handler: a request without a valid access
// token gets 401 with a Bearer challenge; the handler reads the claims
// from the context.
func ExampleRequireAuth() {
	ctx := context.Background()
	key, _ := tokens.GenerateEd25519Key()
	keys, _ := tokens.NewKeySet(key)
	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
	defer store.Close()
	m, _ := tokens.New(tokens.Config{Keys: keys, Store: store})

	me := tokens.RequireAuth(m)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := tokens.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	}))
	pair, _ := m.Issue(ctx, "user-42")
	for _, auth := range []string{"", "Bearer " + pair.AccessToken} {
		req := httptest.NewRequest("GET", "/api/me", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		me.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 401 Bearer {"error":"missing_token","error_description":"a Bearer access token is required"}
	// 200  hello user-42
}
