package tokens_test

import (
	"context"
	"errors"
	"fmt"
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
