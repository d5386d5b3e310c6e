package tokens

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// parsedClaims is the JWT payload as Verify decodes it. Its dates and
// audience are plain values with small decoders: golang-jwt's
// RegisteredClaims decodes each NumericDate and ClaimStrings through a
// second json.Unmarshal, a fifth of an HS256 verification. It implements
// jwt.Claims, so golang-jwt's validator checks exp, nbf, iat, iss and aud
// exactly as before.
type parsedClaims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  audience    `json:"aud"`
	ExpiresAt numericDate `json:"exp"`
	NotBefore numericDate `json:"nbf"`
	IssuedAt  numericDate `json:"iat"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	Family    string      `json:"fid"`
}

var _ jwt.Claims = (*parsedClaims)(nil)

func (p *parsedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return p.ExpiresAt.get(), nil }
func (p *parsedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return p.IssuedAt.get(), nil }
func (p *parsedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return p.NotBefore.get(), nil }
func (p *parsedClaims) GetIssuer() (string, error)                   { return p.Issuer, nil }
func (p *parsedClaims) GetSubject() (string, error)                  { return p.Subject, nil }
func (p *parsedClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(p.Audience), nil
}

// Validate checks the claims golang-jwt does not require by itself; it is
// called during parsing, after the signature has been verified.
func (p *parsedClaims) Validate() error {
	return requireClaims(p.ID, p.Subject, p.Family, p.IssuedAt.set)
}

func (p *parsedClaims) claims(typ Type) *Claims {
	return &Claims{
		Issuer: p.Issuer, Subject: p.Subject, Audience: p.Audience, ID: p.ID, ClientID: p.ClientID, Family: p.Family, Type: typ,
		ExpiresAt: p.ExpiresAt.t, NotBefore: p.NotBefore.t, IssuedAt: p.IssuedAt.t,
	}
}

// numericDate is a JWT NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly fractional, kept to whole seconds as golang-jwt does. null is
// absent.
type numericDate struct {
	t   time.Time
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = numericDate{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || !isJSONNumber(b) {
		return &json.UnmarshalTypeError{Value: "date " + strconv.Quote(string(b)), Type: nil}
	}
	whole, frac := math.Modf(f)
	d.t, d.set = time.Unix(int64(whole), int64(frac*1e9)).Truncate(jwt.TimePrecision), true
	return nil
}

// isJSONNumber rejects what ParseFloat accepts but JSON does not (hex,
// underscores, "Inf"); encoding/json has already checked the literal is a
// number, this guards the decoder on its own.
func isJSONNumber(b []byte) bool {
	return len(b) > 0 && bytes.IndexFunc(b, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '-' || r == '+' || r == '.' || r == 'e' || r == 'E')
	}) < 0
}

func (d *numericDate) get() *jwt.NumericDate {
	if !d.set {
		return nil
	}
	return jwt.NewNumericDate(d.t)
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*a = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		if s, ok := plainString(b); ok {
			*a = audience{s}
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	if list, ok := plainStrings(b); ok {
		*a = list
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// plainStrings decodes a compact JSON array of plain strings (no
// whitespace, no escapes: what Issue writes) without a second pass of
// encoding/json; anything else is left to it.
func plainStrings(b []byte) ([]string, bool) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, false
	}
	inner := b[1 : len(b)-1]
	if len(inner) == 0 {
		return []string{}, true
	}
	out := make([]string, 0, 1+bytes.Count(inner, []byte{','}))
	for len(inner) > 0 {
		end := bytes.IndexByte(inner[min(1, len(inner)):], '"') + 1
		if inner[0] != '"' || end < 1 {
			return nil, false
		}
		s, ok := plainString(inner[:end+1])
		if !ok {
			return nil, false
		}
		out = append(out, s)
		inner = inner[end+1:]
		if len(inner) > 0 {
			if inner[0] != ',' || len(inner) == 1 {
				return nil, false
			}
			inner = inner[1:]
		}
	}
	return out, true
}

// plainString decodes a JSON string literal of printable ASCII without
// escapes, the common case, without a second pass of encoding/json.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(inner), true
}
