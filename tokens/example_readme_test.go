package tokens_test

import (
	"context"
	"net/http"

	"github.com/levqor/levqor/tokens"
)

// Example_readme is the tokens section of the README, compiled.
func Example_readme() {
	ctx, userID, mux := context.Background(), "u_42", http.NewServeMux()
	var api http.Handler = http.NotFoundHandler()
	// README:begin
	key, _ := tokens.GenerateEd25519Key() // or tokens.NewHMACKey(kid, secret)
	keys, _ := tokens.NewKeySet(key)
	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{}) // or NewSQLStore / NewRedisStore
	defer store.Close()
	m, _ := tokens.New(tokens.Config{Keys: keys, Store: store})

	pair, _ := m.Issue(ctx, userID)                // access + refresh, new family; as JSON, an OAuth token response
	claims, err := m.Verify(ctx, pair.AccessToken) // one store round trip
	next, err := m.Refresh(ctx, pair.RefreshToken) // rotation
	err = m.Revoke(ctx, next.RefreshToken)         // revokes the whole family

	mux.Handle("/api/", tokens.RequireAuth(m)(api)) // claims via tokens.FromContext
	mux.Handle("/.well-known/jwks.json", tokens.JWKSHandler(keys))
	// README:end
	_, _ = claims, err
}
