package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/levqor/levqor/tokens"
)

func benchKeys(b *testing.B) map[string]tokens.Key {
	return map[string]tokens.Key{"HS256": hmacKey(b, "hs"), "EdDSA": edKey(b)}
}

func BenchmarkIssue(b *testing.B) {
	for alg, k := range benchKeys(b) {
		b.Run(alg, func(b *testing.B) {
			m := newManager(b, tokens.Config{Keys: keySet(b, k), Store: memStore(b)})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Issue(ctx, "user"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify is Levqor's full verification: pinned algorithms, kid
// lookup, typ, iss/aud/exp/iat/jti checks and the memory revocation check,
// without the verified-token cache (every call parses and checks the
// signature). BenchmarkBareParse is golang-jwt alone on the same token
// with the same validation options; the ratio of the two is the cost
// Levqor adds. BenchmarkVerifyCached is the same token again through the
// cache.
func BenchmarkVerify(b *testing.B) { benchVerify(b, -1) }

// BenchmarkVerifyCached: a repeated token through the verified-token
// cache (the revocation check still runs).
func BenchmarkVerifyCached(b *testing.B) { benchVerify(b, 0) }

// BenchmarkVerifyExpired: a client that keeps sending its expired access
// token. The claims are checked before the signature, so a refusal costs
// no signature work (compare BenchmarkVerify: an Ed25519 check is most of
// it).
func BenchmarkVerifyExpired(b *testing.B) {
	for alg, k := range benchKeys(b) {
		b.Run(alg, func(b *testing.B) {
			now := time.Now()
			issuer := newManager(b, tokens.Config{Keys: keySet(b, k), Store: memStore(b), Now: func() time.Time { return now.Add(-time.Hour) }})
			p, _ := issuer.Issue(context.Background(), "user")
			m := newManager(b, tokens.Config{Keys: keySet(b, k), Store: memStore(b), Now: func() time.Time { return now }})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrExpired) {
					b.Fatalf("an expired token: %v", err)
				}
			}
		})
	}
}

func benchVerify(b *testing.B, cacheSize int) {
	for alg, k := range benchKeys(b) {
		b.Run(alg, func(b *testing.B) {
			m := newManager(b, tokens.Config{Keys: keySet(b, k), Store: memStore(b), VerifiedCacheSize: cacheSize})
			ctx := context.Background()
			p, _ := m.Issue(ctx, "user")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, p.AccessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBareParse(b *testing.B) {
	for alg, k := range benchKeys(b) {
		b.Run(alg, func(b *testing.B) {
			ks := keySet(b, k)
			m := newManager(b, tokens.Config{Keys: ks, Store: memStore(b)})
			p, _ := m.Issue(context.Background(), "user")
			verifyKey := publicKey(b, k)
			parser := jwt.NewParser(
				jwt.WithValidMethods([]string{k.Algorithm()}),
				jwt.WithIssuer(tokens.DefaultIssuer),
				jwt.WithAudience(tokens.DefaultAudience),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithLeeway(tokens.DefaultLeeway),
			)
			keyFunc := func(*jwt.Token) (any, error) { return verifyKey, nil }
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parser.ParseWithClaims(p.AccessToken, &jwt.RegisteredClaims{}, keyFunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func publicKey(b *testing.B, k tokens.Key) any {
	if priv, ok := k.Ed25519PrivateKey(); ok {
		return priv.Public()
	}
	return testSecret
}
