package bench

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/levqor/levqor/tokens"
)

// BenchmarkJWTVerify: Levqor's full verification (pinned algorithm, kid,
// typ, iss/aud/exp/iat/jti, memory revocation check) against a bare
// golang-jwt/v5 parse of the same token with the same validation options:
// "levqor" without the verified-token cache (every call parses and checks
// the signature), "levqor-cached" with it (the token repeats).
func BenchmarkJWTVerify(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef-bench")
	hk, _ := tokens.NewHMACKey("hs", secret)
	ek, _ := tokens.GenerateEd25519Key()
	for _, tc := range []struct {
		alg    string
		key    tokens.Key
		verify any
	}{{"HS256", hk, secret}, {"EdDSA", ek, nil}} {
		ks, _ := tokens.NewKeySet(tc.key)
		store, _ := tokens.NewMemoryStore(tokens.MemoryConfig{})
		m, err := tokens.New(tokens.Config{Keys: ks, Store: store, VerifiedCacheSize: -1})
		if err != nil {
			b.Fatal(err)
		}
		cached, err := tokens.New(tokens.Config{Keys: ks, Store: store})
		if err != nil {
			b.Fatal(err)
		}
		p, _ := m.Issue(context.Background(), "user-1")
		verifyKey := tc.verify
		if priv, ok := tc.key.Ed25519PrivateKey(); ok {
			verifyKey = priv.Public()
		}
		parser := jwt.NewParser(jwt.WithValidMethods([]string{tc.alg}), jwt.WithIssuer(tokens.DefaultIssuer),
			jwt.WithAudience(tokens.DefaultAudience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(tokens.DefaultLeeway))
		keyFunc := func(*jwt.Token) (any, error) { return verifyKey, nil }
		b.Run(tc.alg+"/levqor", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, p.AccessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.alg+"/levqor-cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cached.Verify(ctx, p.AccessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.alg+"/golang-jwt", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parser.ParseWithClaims(p.AccessToken, &jwt.RegisteredClaims{}, keyFunc); err != nil {
					b.Fatal(err)
				}
			}
		})
		_ = store.Close()
	}
}
