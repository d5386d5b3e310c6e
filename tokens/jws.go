package tokens

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// jwsHeader is the protected header as parse reads it: into a struct, not
// golang-jwt's map[string]any, which was most of the JSON work of a
// verification. encoding/json matches member names without regard to
// case; that cannot matter here, because the key the kid names fixes the
// algorithm and its signature authenticates the whole header.
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// parse verifies a compact JWS: it decodes its claims and checks them with
// v (nil checks none: Revoke) and the typ header (any type when want is
// ""), then checks the signature. The claims are checked first because
// they cost a microsecond and an Ed25519 signature about fifty: a client
// that keeps sending an expired token (the commonest refused token) is
// refused without signature work. Nothing of the claims is trusted or
// returned before the signature is good; decoding them reads at most
// MaxTokenLength bytes of JSON, which the fuzz tests cover. The signature
// and claim checks themselves are golang-jwt's (SigningMethod.Verify,
// Validator.Validate).
func (m *Manager) parse(v *jwt.Validator, token string, want Type) (*Claims, error) {
	if len(token) > m.cfg.MaxTokenLength {
		return nil, ErrTooLarge
	}
	if token == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	head, rest, ok := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return nil, fmt.Errorf("%w: %d segments, want 3", ErrMalformed, strings.Count(token, ".")+1)
	}
	var h jwsHeader
	if err := decodeSegment(head, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if h.Alg != AlgEdDSA && h.Alg != AlgHS256 {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	k, ok := m.cfg.Keys.Lookup(h.Kid)
	if !ok {
		return nil, ErrUnknownKey
	}
	// The kid decides the algorithm: an EdDSA key's public bytes are never
	// used as an HMAC secret, whatever alg the token claims.
	if h.Alg != k.Algorithm() {
		return nil, ErrAlgorithm
	}
	var w parsedClaims
	if err := decodeSegment(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if v != nil {
		if err := v.Validate(&w); err != nil {
			return nil, classify(err)
		}
	}
	typ := Type(strings.TrimPrefix(strings.ToLower(h.Typ), "application/"))
	switch {
	case typ != TypeAccess && typ != TypeRefresh:
		return nil, fmt.Errorf("%w: typ %q", ErrWrongType, h.Typ)
	case want != "" && typ != want:
		return nil, fmt.Errorf("%w: got %s, want %s", ErrWrongType, typ, want)
	}
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	if err := k.method.Verify(token[:len(head)+1+len(payload)], rawSig, k.verify); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return w.claims(typ), nil
}

// decodeSegment decodes one base64url (unpadded) JSON segment into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// classify maps golang-jwt's claim errors onto this package's sentinels.
func classify(err error) error {
	if errors.Is(err, ErrMissingClaim) {
		return ErrMissingClaim
	}
	for _, m := range []struct{ theirs, ours error }{
		{jwt.ErrTokenExpired, ErrExpired},
		{jwt.ErrTokenNotValidYet, ErrNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ErrNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ErrIssuer},
		{jwt.ErrTokenInvalidAudience, ErrAudience},
		{jwt.ErrTokenRequiredClaimMissing, ErrMissingClaim},
	} {
		if errors.Is(err, m.theirs) {
			return fmt.Errorf("%w: %v", m.ours, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
