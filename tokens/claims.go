package tokens

import (
	"context"
	"fmt"

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
	jwt.RegisteredClaims
	ClientID string `json:"client_id,omitempty"`
	Family   string `json:"fid"`

	// Type is taken from the verified header, not from the payload.
	Type Type `json:"-"`
}

// Validate checks the claims golang-jwt does not require by itself; it is
// called during parsing, after the signature has been verified.
func (c *Claims) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: jti", ErrMissingClaim)
	case c.IssuedAt == nil:
		return fmt.Errorf("%w: iat", ErrMissingClaim)
	case c.Subject == "":
		return fmt.Errorf("%w: sub", ErrMissingClaim)
	case c.Family == "":
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
