package tokens_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/tokens"
)

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// craft signs arbitrary claims and headers with the test HMAC secret, to
// build tokens the Manager would never issue.
func craft(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": tokens.DefaultIssuer, "aud": tokens.DefaultAudience, "sub": "user",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "id-1", "fid": "fam-1",
	}
}

func without(c jwt.MapClaims, key string) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func with(c jwt.MapClaims, key string, v any) jwt.MapClaims {
	out := without(c, key)
	out[key] = v
	return out
}

func TestVerifyBadInput(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(fixedNow)
	hk := hmacKey(t, "hs-1")
	ek := edKey(t)
	ks := keySet(t, hk, ek)
	store := memStore(t)
	m := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now, Leeway: -1})
	good, err := m.Issue(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := m.Issue(ctx, "user")
	if err := m.Revoke(ctx, revoked.AccessToken); err != nil {
		t.Fatal(err)
	}
	other := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now, Issuer: "someone-else"})
	otherIss, _ := other.Issue(ctx, "user")
	otherAud := newManager(t, tokens.Config{Keys: ks, Store: store, Now: clk.Now, Audience: "another-api"})
	wrongAud, _ := otherAud.Issue(ctx, "user")
	unknownKS := keySet(t, edKey(t))
	stranger := newManager(t, tokens.Config{Keys: unknownKS, Store: store, Now: clk.Now})
	unknownKid, _ := stranger.Issue(ctx, "user")
	future := newManager(t, tokens.Config{Keys: ks, Store: store, Now: func() time.Time { return fixedNow.Add(time.Hour) }})
	fromFuture, _ := future.Issue(ctx, "user")

	at := map[string]any{"typ": "at+jwt", "kid": "hs-1"}
	vc := validClaims(fixedNow)
	pub, _ := ek.Ed25519PrivateKey()

	// Sanity: the crafting helper makes tokens that verify (once the store
	// knows their family: an unknown family counts as revoked).
	if err := store.CreateFamily(ctx, "fam-1", "user", "refresh-1", fixedNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, craft(t, jwt.SigningMethodHS256, testSecret, at, vc)); err != nil {
		t.Fatalf("crafted good token rejected: %v", err)
	}

	parts := strings.Split(good.AccessToken, ".")
	// The good token's claims with another subject: every claim check
	// passes, so only the signature can refuse it.
	goodClaims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(goodClaims), `"sub":"user"`, `"sub":"admin"`, 1)))
	if tamperedPayload == parts[1] {
		t.Fatalf("the claims name no subject to tamper with: %s", goodClaims)
	}
	// An expired token with a forged signature: refused as expired,
	// without the signature work (the claims are checked first).
	expiredForged := craft(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32b"), at, with(vc, "exp", fixedNow.Add(-time.Second).Unix()))

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", tokens.ErrMalformed},
		{"garbage", "not a token", tokens.ErrMalformed},
		{"two segments", "abc.def", tokens.ErrMalformed},
		{"bad base64", "!!!.###.$$$", tokens.ErrMalformed},
		{"bad json", base64.RawURLEncoding.EncodeToString([]byte("{")) + ".e30.sig", tokens.ErrMalformed},
		{"oversized", strings.Repeat("a", tokens.DefaultMaxTokenLength+1), tokens.ErrTooLarge},
		{"alg none", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, at, vc), tokens.ErrAlgorithm},
		{"alg unknown", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX1","typ":"at+jwt","kid":"hs-1"}`)) + "." + parts[1] + "." + parts[2], tokens.ErrAlgorithm},
		{"alg HS384 not pinned", craft(t, jwt.SigningMethodHS384, testSecret, at, vc), tokens.ErrAlgorithm},
		{"HS256 with ed25519 public key as secret", craft(t, jwt.SigningMethodHS256, []byte(pub.Public().(ed25519.PublicKey)), map[string]any{"typ": "at+jwt", "kid": ek.ID()}, vc), tokens.ErrAlgorithm},
		{"EdDSA under HMAC kid", craft(t, jwt.SigningMethodEdDSA, pub, at, vc), tokens.ErrAlgorithm},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2], tokens.ErrSignature},
		{"wrong secret", craft(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32b"), at, vc), tokens.ErrSignature},
		{"unknown kid", unknownKid.AccessToken, tokens.ErrUnknownKey},
		{"no kid", craft(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "at+jwt"}, vc), tokens.ErrUnknownKey},
		{"expired", craft(t, jwt.SigningMethodHS256, testSecret, at, with(vc, "exp", fixedNow.Add(-time.Second).Unix())), tokens.ErrExpired},
		{"expired, signature forged", expiredForged, tokens.ErrExpired},
		{"not yet valid (nbf)", craft(t, jwt.SigningMethodHS256, testSecret, at, with(vc, "nbf", fixedNow.Add(time.Minute).Unix())), tokens.ErrNotYetValid},
		{"issued in the future", fromFuture.AccessToken, tokens.ErrNotYetValid},
		{"wrong issuer", otherIss.AccessToken, tokens.ErrIssuer},
		{"wrong audience", wrongAud.AccessToken, tokens.ErrAudience},
		{"refresh token as access token", good.RefreshToken, tokens.ErrAudience},
		{"refresh typ with access audience", craft(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "rt+jwt", "kid": "hs-1"}, vc), tokens.ErrWrongType},
		{"plain JWT typ", craft(t, jwt.SigningMethodHS256, testSecret, map[string]any{"typ": "JWT", "kid": "hs-1"}, vc), tokens.ErrWrongType},
		{"no exp", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "exp")), tokens.ErrMissingClaim},
		{"no jti", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "jti")), tokens.ErrMissingClaim},
		{"no iat", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "iat")), tokens.ErrMissingClaim},
		{"no sub", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "sub")), tokens.ErrMissingClaim},
		{"no fid", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "fid")), tokens.ErrMissingClaim},
		{"no iss", craft(t, jwt.SigningMethodHS256, testSecret, at, without(vc, "iss")), tokens.ErrMissingClaim},
		{"exp of wrong type", craft(t, jwt.SigningMethodHS256, testSecret, at, with(vc, "exp", "tomorrow")), tokens.ErrMalformed},
		{"revoked", revoked.AccessToken, tokens.ErrRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := m.Verify(ctx, tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Fatal("error text contains the token")
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Fatal("error text contains the secret")
			}
		})
	}

	t.Run("access token as refresh token", func(t *testing.T) {
		if _, err := m.Refresh(ctx, good.AccessToken); !errors.Is(err, tokens.ErrAudience) {
			t.Fatalf("err = %v, want ErrAudience", err)
		}
		rtAud := craft(t, jwt.SigningMethodHS256, testSecret, at, with(vc, "aud", tokens.DefaultIssuer))
		if _, err := m.Refresh(ctx, rtAud); !errors.Is(err, tokens.ErrWrongType) {
			t.Fatalf("err = %v, want ErrWrongType", err)
		}
	})

	t.Run("expired after time passes", func(t *testing.T) {
		clk.Advance(tokens.DefaultAccessTTL + time.Second)
		defer clk.Advance(-(tokens.DefaultAccessTTL + time.Second))
		if _, err := m.Verify(ctx, good.AccessToken); !errors.Is(err, tokens.ErrExpired) {
			t.Fatalf("err = %v, want ErrExpired", err)
		}
	})
}

func TestLeeway(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(fixedNow)
	m := newManager(t, tokens.Config{Keys: keySet(t, hmacKey(t, "k")), Store: memStore(t), Now: clk.Now, Leeway: 10 * time.Second})
	p, _ := m.Issue(ctx, "u")
	clk.Advance(tokens.DefaultAccessTTL + 9*time.Second)
	if _, err := m.Verify(ctx, p.AccessToken); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := m.Verify(ctx, p.AccessToken); !errors.Is(err, tokens.ErrExpired) {
		t.Fatalf("past leeway: err = %v, want ErrExpired", err)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		k1, k2 func(t testing.TB) tokens.Key
	}{
		{"EdDSA", edKey, edKey},
		{"HS256", func(t testing.TB) tokens.Key { return hmacKey(t, "hs-old") }, func(t testing.TB) tokens.Key { return hmacKey(t, "hs-new") }},
		{"HS256 to EdDSA", func(t testing.TB) tokens.Key { return hmacKey(t, "hs-old") }, edKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k1, k2 := tc.k1(t), tc.k2(t)
			ks := keySet(t, k1)
			m := newManager(t, tokens.Config{Keys: ks, Store: memStore(t)})
			old, _ := m.Issue(ctx, "u")
			if err := ks.Rotate(k2); err != nil {
				t.Fatal(err)
			}
			if ks.Signing().ID() != k2.ID() {
				t.Fatal("rotate did not switch the signing key")
			}
			if _, err := m.Verify(ctx, old.AccessToken); err != nil {
				t.Fatalf("token of the retired-but-accepted key: %v", err)
			}
			fresh, _ := m.Issue(ctx, "u")
			if kid(t, fresh.AccessToken) != k2.ID() {
				t.Fatal("new tokens not signed with the new key")
			}
			if err := ks.Retire(k2.ID()); !errors.Is(err, tokens.ErrKeyInUse) {
				t.Fatalf("retire current: err = %v, want ErrKeyInUse", err)
			}
			if err := ks.Retire(k1.ID()); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Verify(ctx, old.AccessToken); !errors.Is(err, tokens.ErrUnknownKey) {
				t.Fatalf("token of a removed key: err = %v, want ErrUnknownKey", err)
			}
			if _, err := m.Verify(ctx, fresh.AccessToken); err != nil {
				t.Fatal(err)
			}
			if err := ks.Rotate(k2); !errors.Is(err, tokens.ErrDuplicateKey) {
				t.Fatalf("rotate to a present kid: err = %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ks := keySet(t, hmacKey(t, "k"))
	for name, cfg := range map[string]tokens.Config{
		"no keys":            {Store: memStore(t)},
		"no store":           {Keys: ks},
		"negative ttl":       {Keys: ks, Store: memStore(t), AccessTTL: -time.Second},
		"access outlives rt": {Keys: ks, Store: memStore(t), AccessTTL: 2 * time.Hour, RefreshTTL: time.Hour},
	} {
		if _, err := tokens.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := tokens.NewHMACKey("k", []byte("short")); !errors.Is(err, tokens.ErrWeakSecret) {
		t.Errorf("short secret: err = %v", err)
	}
	if _, err := tokens.NewHMACKey("", testSecret); err == nil {
		t.Error("empty kid accepted")
	}
	if _, err := tokens.NewEd25519Key(ed25519.PrivateKey("short")); err == nil {
		t.Error("short ed25519 key accepted")
	}
	if _, err := tokens.NewKeySet(hmacKey(t, "a"), hmacKey(t, "a")); !errors.Is(err, tokens.ErrDuplicateKey) {
		t.Errorf("duplicate kid: err = %v", err)
	}
	if s := hmacKey(t, "k").String(); strings.Contains(s, string(testSecret[:8])) {
		t.Errorf("Key.String leaks the secret: %s", s)
	}
	if b, err := json.Marshal(hmacKey(t, "k")); err != nil || string(b) != `{"kid":"k","alg":"HS256"}` {
		t.Errorf("Key JSON %s, %v: want only kid and alg", b, err)
	}
	ed := edKey(t)
	if b, _ := json.Marshal(map[string]any{"key": ed}); strings.Contains(string(b), "sign") || !strings.Contains(string(b), `"alg":"EdDSA"`) {
		t.Errorf("Ed25519 key JSON %s", b)
	}
	if _, err := newManager(t, tokens.Config{Keys: ks, Store: memStore(t)}).Issue(context.Background(), ""); !errors.Is(err, tokens.ErrMissingClaim) {
		t.Errorf("empty subject: err = %v", err)
	}
}

func kid(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := tok.Header["kid"].(string)
	return s
}

func TestVerifyRefresh(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, tokens.Config{Keys: keySet(t, edKey(t)), Store: memStore(t)})
	p, _ := m.Issue(ctx, "u")
	c, err := m.VerifyRefresh(ctx, p.RefreshToken)
	if err != nil || c.Subject != "u" || c.Family != p.Family || c.Type != tokens.TypeRefresh {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := m.VerifyRefresh(ctx, p.AccessToken); err == nil {
		t.Fatal("access token accepted as a refresh token")
	}
	// Verifying does not rotate: the token still refreshes once.
	if _, err := m.Refresh(ctx, p.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_ = m.RevokeFamily(ctx, p.Family)
	if _, err := m.VerifyRefresh(ctx, p.RefreshToken); !errors.Is(err, tokens.ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
}
