package tokens

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Type is the kind of a token, carried in the JOSE "typ" header so one kind
// can never be used as the other (RFC 8725 §3.11).
type Type string

// Token types. TypeAccess is the media type of RFC 9068 §2.1.
const (
	TypeAccess  Type = "at+jwt"
	TypeRefresh Type = "rt+jwt"
)

// Claims are the verified claims of a token. Access tokens follow RFC 9068:
// iss, sub, aud, exp, iat, jti and client_id. Family ties access and refresh
// tokens to the refresh family they were issued in, so revoking the family
// rejects them all.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub
	Audience  []string  // aud
	ExpiresAt time.Time // exp
	NotBefore time.Time // nbf; zero when absent
	IssuedAt  time.Time // iat
	ID        string    // jti
	ClientID  string    // client_id (access tokens)
	Family    string    // fid: the refresh family
	// Type is taken from the verified header, not from the payload.
	Type Type
}

// wireClaims is the JWT payload as golang-jwt parses and signs it; the
// library's types stay out of the public API.
type wireClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id,omitempty"`
	Family   string `json:"fid"`
}

// Validate checks the claims golang-jwt does not require by itself; it is
// called during parsing, after the signature has been verified.
func (c *wireClaims) Validate() error {
	return requireClaims(c.ID, c.Subject, c.Family, c.IssuedAt != nil)
}

// validate is wireClaims.Validate for parsed claims, for the parser that
// skips claim validation (Revoke accepts any audience).
func (c *Claims) validate() error {
	return requireClaims(c.ID, c.Subject, c.Family, !c.IssuedAt.IsZero())
}

func requireClaims(jti, sub, fid string, hasIAT bool) error {
	switch {
	case jti == "":
		return fmt.Errorf("%w: jti", ErrMissingClaim)
	case !hasIAT:
		return fmt.Errorf("%w: iat", ErrMissingClaim)
	case sub == "":
		return fmt.Errorf("%w: sub", ErrMissingClaim)
	case fid == "":
		return fmt.Errorf("%w: fid", ErrMissingClaim)
	}
	return nil
}

type claimsKey struct{}

// NewContext returns a copy of ctx carrying c.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the verified claims the auth middleware stored, if any.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// SubjectFromContext returns the authenticated subject, or "" when the
// request is anonymous. It fits ratelimit-style key functions.
func SubjectFromContext(ctx context.Context) string {
	if c, ok := FromContext(ctx); ok {
		return c.Subject
	}
	return ""
}
