package tokens

import "errors"

// Verification errors. Each bad input maps to exactly one of these so callers
// can tell them apart with errors.Is; the wrapped text never contains the token.
var (
	ErrMalformed     = errors.New("tokens: token is malformed")
	ErrTooLarge      = errors.New("tokens: token exceeds the maximum length")
	ErrAlgorithm     = errors.New("tokens: signing algorithm not accepted")
	ErrUnknownKey    = errors.New("tokens: unknown key id")
	ErrSignature     = errors.New("tokens: signature is invalid")
	ErrExpired       = errors.New("tokens: token expired")
	ErrNotYetValid   = errors.New("tokens: token not valid yet")
	ErrIssuer        = errors.New("tokens: wrong issuer")
	ErrAudience      = errors.New("tokens: wrong audience")
	ErrMissingClaim  = errors.New("tokens: required claim missing")
	ErrWrongType     = errors.New("tokens: wrong token type")
	ErrRevoked       = errors.New("tokens: token revoked")
	ErrReused        = errors.New("tokens: refresh token reused; its family is revoked")
	ErrUnknownFamily = errors.New("tokens: unknown refresh token family")
	// ErrStore wraps a failure of the Store (database, Redis). It is not a
	// verdict on the token: the middleware answers 503, not 401.
	ErrStore = errors.New("tokens: token store unavailable")
)

// Key and configuration errors.
var (
	ErrWeakSecret   = errors.New("tokens: HMAC secret shorter than 32 bytes")
	ErrKeyInUse     = errors.New("tokens: cannot retire the current signing key")
	ErrNoKeys       = errors.New("tokens: key set has no signing key")
	ErrDuplicateKey = errors.New("tokens: duplicate key id")
)
