package tokens

import (
	"github.com/levqor/levqor/internal/httpx"

	"context"
	"errors"
	"net/http"
	"strings"
)

// Verifier verifies an access token; *Manager implements it.
type Verifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

var _ Verifier = (*Manager)(nil)

// RequireAuth returns middleware that admits only requests carrying a valid
// access token in "Authorization: Bearer <token>". The verified claims are
// in the request context (FromContext). A missing or invalid token gets 401
// with a WWW-Authenticate: Bearer challenge (RFC 6750 §3) and a JSON body;
// a Store failure gets 503 with Retry-After: 1 (the Manager's FailOpen
// decides whether that can happen). Tokens are never logged or echoed.
//
// A request whose context already holds verified claims (put there by
// OptionalAuth or RequireAuth earlier in the chain) is admitted without
// verifying again, so OptionalAuth in front of a rate limiter and
// RequireAuth on the protected routes cost one verification and one store
// round trip per request, not two.
func RequireAuth(v Verifier) func(http.Handler) http.Handler {
	return auth(v, false)
}

// OptionalAuth is RequireAuth for routes that also serve anonymous users: a
// request without an Authorization header passes through without claims. A
// request that presents a token must present a valid one: a bad token is
// still refused, so a client learns its token stopped working.
func OptionalAuth(v Verifier) func(http.Handler) http.Handler {
	return auth(v, true)
}

func auth(v Verifier, optional bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := FromContext(r.Context()); ok {
				next.ServeHTTP(w, r)
				return
			}
			h := r.Header.Get("Authorization")
			if h == "" && optional {
				next.ServeHTTP(w, r)
				return
			}
			token, ok := bearer(h)
			if !ok {
				// RFC 6750 §3.1: no error code when no credentials were sent.
				challenge(w, http.StatusUnauthorized, `Bearer`, "missing_token", "a Bearer access token is required")
				return
			}
			c, err := v.Verify(r.Context(), token)
			if err != nil {
				if errors.Is(err, ErrStore) {
					// An outage: the client may retry, later.
					w.Header().Set("Retry-After", "1")
					challenge(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "token revocation store unavailable")
					return
				}
				challenge(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, "invalid_token", describe(err))
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" value.
// The scheme is case-insensitive (RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// describe gives a client-safe reason; it never includes token content.
func describe(err error) string {
	for _, s := range []error{ErrExpired, ErrRevoked, ErrTooLarge, ErrWrongType, ErrNotYetValid} {
		if errors.Is(err, s) {
			return strings.TrimPrefix(s.Error(), "tokens: ")
		}
	}
	return "the access token is invalid"
}

func challenge(w http.ResponseWriter, status int, wwwAuth, code, desc string) {
	if wwwAuth != "" {
		w.Header().Set("WWW-Authenticate", wwwAuth)
	}
	httpx.WriteJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}
