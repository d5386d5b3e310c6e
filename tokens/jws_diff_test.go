package tokens_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/levqor/levqor/tokens"
)

// golangJWTAccepts is how Verify decided before it parsed tokens itself:
// golang-jwt's parser with the same options, the kid choosing the key and
// its algorithm, and the typ header checked afterwards. The revocation
// check is left out: the caller's tokens belong to a live family.
func golangJWTAccepts(token string, now time.Time) bool {
	p := jwt.NewParser(jwt.WithValidMethods([]string{tokens.AlgEdDSA, tokens.AlgHS256}), jwt.WithIssuer(tokens.DefaultIssuer),
		jwt.WithAudience(tokens.DefaultAudience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(tokens.DefaultLeeway), jwt.WithTimeFunc(func() time.Time { return now }))
	var c jwt.MapClaims
	t, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != "hs" || t.Method.Alg() != tokens.AlgHS256 {
			return nil, tokens.ErrUnknownKey
		}
		return testSecret, nil
	})
	if err != nil {
		return false
	}
	for _, k := range []string{"jti", "sub", "fid"} {
		if s, _ := c[k].(string); s == "" {
			return false
		}
	}
	typ, _ := t.Header["typ"].(string)
	return strings.TrimPrefix(strings.ToLower(typ), "application/") == string(tokens.TypeAccess)
}

// signRaw signs header and claims JSON as they are, with the test secret.
func signRaw(header, claims string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(s))
	return s + "." + enc.EncodeToString(mac.Sum(nil))
}

// diffManager issues a live token family and returns a Manager (no cache,
// fixed clock) and that family's claims as JSON.
func diffManager(t testing.TB) (*tokens.Manager, string) {
	now := func() time.Time { return fixedNow }
	m := newManager(t, tokens.Config{Keys: keySet(t, hmacKey(t, "hs")), Store: memStore(t), Now: now, VerifiedCacheSize: -1})
	p, err := m.Issue(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(p.AccessToken, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return m, string(payload)
}

// TestParseMatchesGolangJWT: Verify accepts what golang-jwt accepted and
// refuses what it refused, header and claim variations included; where
// they differ, Verify is the stricter.
func TestParseMatchesGolangJWT(t *testing.T) {
	m, claims := diffManager(t)
	var c map[string]any
	if err := json.Unmarshal([]byte(claims), &c); err != nil {
		t.Fatal(err)
	}
	set := func(k string, v any) string {
		out := map[string]any{}
		for key, val := range c {
			out[key] = val
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	const hdr = `{"alg":"HS256","kid":"hs","typ":"at+jwt"}`
	for _, tc := range []struct {
		name, header, claims string
		want                 bool // both accept
		stricter             bool // golang-jwt accepts, Verify refuses
	}{
		{"issued", hdr, claims, true, false},
		{"members reordered", `{"typ":"at+jwt","kid":"hs","alg":"HS256"}`, claims, true, false},
		{"typ application/at+jwt", `{"alg":"HS256","kid":"hs","typ":"application/AT+JWT"}`, claims, true, false},
		{"extra header member", `{"alg":"HS256","kid":"hs","typ":"at+jwt","x5u":"https://example.com"}`, claims, true, false},
		{"alg none", `{"alg":"none","kid":"hs","typ":"at+jwt"}`, claims, false, false},
		{"alg EdDSA on an HMAC key", `{"alg":"EdDSA","kid":"hs","typ":"at+jwt"}`, claims, false, false},
		{"alg not a string", `{"alg":1,"kid":"hs","typ":"at+jwt"}`, claims, false, false},
		{"unknown kid", `{"alg":"HS256","kid":"other","typ":"at+jwt"}`, claims, false, false},
		{"no kid", `{"alg":"HS256","typ":"at+jwt"}`, claims, false, false},
		{"refresh typ", `{"alg":"HS256","kid":"hs","typ":"rt+jwt"}`, claims, false, false},
		{"no typ", `{"alg":"HS256","kid":"hs"}`, claims, false, false},
		{"header not an object", `[]`, claims, false, false},
		{"header null", `null`, claims, false, false},
		{"expired", hdr, set("exp", fixedNow.Add(-time.Hour).Unix()), false, false},
		{"no exp", hdr, set("exp", nil), false, false},
		{"exp a string", hdr, set("exp", "tomorrow"), false, false},
		{"iat in the future", hdr, set("iat", fixedNow.Add(time.Hour).Unix()), false, false},
		{"nbf in the future", hdr, set("nbf", fixedNow.Add(time.Hour).Unix()), false, false},
		{"wrong issuer", hdr, set("iss", "someone"), false, false},
		{"wrong audience", hdr, set("aud", "other-api"), false, false},
		{"audience list", hdr, set("aud", []string{"x", tokens.DefaultAudience}), true, false},
		{"no jti", hdr, set("jti", nil), false, false},
		{"claims not an object", hdr, `"x"`, false, false},
		{"claims null", hdr, `null`, false, false},
		{"trailing data after the claims", hdr, claims + ` {}`, false, false},
		{"upper-case duplicate alg", `{"alg":"HS256","kid":"hs","typ":"at+jwt","ALG":"none"}`, claims, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := signRaw(tc.header, tc.claims)
			_, err := m.Verify(context.Background(), token)
			ref := golangJWTAccepts(token, fixedNow)
			if ref != (tc.want || tc.stricter) {
				t.Fatalf("golang-jwt accepts = %v, the table says %v", ref, tc.want || tc.stricter)
			}
			if (err == nil) != tc.want {
				t.Fatalf("Verify: %v; want accepted = %v", err, tc.want)
			}
		})
	}
}

// FuzzParseMatchesGolangJWT signs arbitrary header and claims JSON with
// the test key (so the signature is always good) and checks that Verify
// never accepts a token golang-jwt's parser refuses.
func FuzzParseMatchesGolangJWT(f *testing.F) {
	m, claims := diffManager(f)
	f.Add(`{"alg":"HS256","kid":"hs","typ":"at+jwt"}`, claims)
	f.Add(`{"alg":"HS256","kid":"hs","typ":"at+jwt","ALG":"none"}`, claims)
	f.Add(`{"alg":"none","kid":"hs","typ":"at+jwt"}`, claims)
	f.Add(`{"alg":"HS256","kid":"hs","typ":"rt+jwt"}`, claims)
	f.Fuzz(func(t *testing.T, header, claims string) {
		token := signRaw(header, claims)
		c, err := m.Verify(context.Background(), token)
		if err == nil && !golangJWTAccepts(token, fixedNow) {
			t.Fatalf("Verify accepted %q / %q (claims %+v); golang-jwt refuses it", header, claims, c)
		}
	})
}
