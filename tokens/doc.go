// Package tokens issues and verifies JWT access and refresh tokens with
// rotation, reuse detection and revocation, following RFC 8725 (JWT BCP),
// RFC 9068 (JWT access tokens) and RFC 9700 §4.14.2 (refresh token rotation).
//
// # Quick start
//
//	key, _ := tokens.GenerateEd25519Key()
//	keys, _ := tokens.NewKeySet(key)
//	store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
//	m, _ := tokens.New(tokens.Config{Keys: keys, Store: store})
//	pair, _ := m.Issue(ctx, "user-42")          // JSON: an OAuth token response
//	claims, err := m.Verify(ctx, pair.AccessToken)
//	mux.Handle("/api/", tokens.RequireAuth(m)(api))
//
// # Design
//
// A Manager signs with the current key of a KeySet (Ed25519 "EdDSA" or
// "HS256"); older keys stay accepted until retired, so keys rotate without
// logging anyone out. The verifier pins the algorithms, looks the key up by
// kid and requires the token's alg to be that key's algorithm, so alg=none
// and HMAC/EdDSA confusion are rejected. Access tokens carry typ "at+jwt",
// refresh tokens "rt+jwt"; neither is accepted as the other.
//
// Every Issue starts a refresh family. Refresh returns a new pair in the same
// family and retires the refresh token presented; presenting a retired one
// again (after RefreshGrace) is reuse: the whole family is revoked, including
// the newest refresh token and every access token issued in it. Within the
// grace period the previous refresh token can be exchanged again and the new
// refresh token shares the current token's jti, so two concurrent refreshes
// by one client both end with a usable token.
//
// A Store holds revocations and refresh families: MemoryStore (one process,
// with a janitor), SQLStore (database/sql; SQLite or PostgreSQL) and
// RedisStore (shared by replicas; keys expire by themselves). Verify asks the
// Store once per token. RequireAuth and OptionalAuth are the HTTP middleware;
// JWKSHandler publishes the Ed25519 public keys.
//
// Each kind of bad input has its own sentinel error (ErrMalformed,
// ErrTooLarge, ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrExpired,
// ErrNotYetValid, ErrIssuer, ErrAudience, ErrMissingClaim, ErrWrongType,
// ErrRevoked, ErrReused, ErrUnknownFamily); store failures wrap ErrStore.
// No error text contains a token or a key.
package tokens
