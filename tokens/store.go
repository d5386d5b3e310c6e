package tokens

import (
	"context"
	"time"
)

// RevocationChecker answers the one question verifying an access token
// needs: was this token, or its refresh family, revoked? Config.Revocations
// takes one, e.g. a cache in front of the Store.
type RevocationChecker interface {
	// Revoked reports whether the token jti or its family is revoked, in at
	// most one round trip to the backing service. A family the store does
	// not know (never created there, dropped after expiry, or lost with the
	// store's data) counts as revoked: a store that lost its data refuses
	// every token issued before, and users log in again, rather than
	// silently accepting tokens that were logged out.
	Revoked(ctx context.Context, family, jti string) (bool, error)
}

// Rotation is one refresh: Store.Rotate's request.
type Rotation struct {
	Family    string        // the refresh family
	Presented string        // jti of the refresh token presented
	Next      string        // jti for the new refresh token
	Now       time.Time     // when the refresh happens
	Grace     time.Duration // how long a retired token may still be exchanged
	ExpiresAt time.Time     // the family record's new expiry
}

// Store keeps what a signed token cannot carry: which tokens and refresh
// families were revoked, and which refresh token of each family is current.
// MemoryStore, SQLStore and RedisStore implement it and pass the same
// conformance suite (tokenstest.Run), which a Store of your own can run too.
//
// Implementations must make Rotate atomic: two concurrent rotations of the
// same current token must not both succeed with fresh ids.
type Store interface {
	RevocationChecker

	// CreateFamily records a new refresh family whose current token is jti.
	// The record may be dropped after expiresAt.
	CreateFamily(ctx context.Context, family, subject, jti string, expiresAt time.Time) error

	// Rotate retires the refresh token presented and makes r.Next current.
	// It returns the jti the new refresh token must carry:
	//   - Presented is current: Next (now current); Presented becomes the
	//     previous token, retired at Now.
	//   - Presented is the previous token and Now is within Grace of its
	//     retirement: the family's current jti (a concurrent refresh; no state
	//     changes, and both responses hold a token valid as current).
	//   - the family is revoked: ErrRevoked.
	//   - the family does not exist: ErrUnknownFamily.
	//   - anything else is reuse: the family is revoked and ErrReused returned.
	// ExpiresAt extends the family record's lifetime.
	Rotate(ctx context.Context, r Rotation) (string, error)

	// RevokeToken revokes one token (by jti) until expiresAt, when the token
	// expires anyway.
	RevokeToken(ctx context.Context, family, jti string, expiresAt time.Time) error

	// RevokeFamily revokes a refresh family, and with it every access and
	// refresh token issued in it, until expiresAt.
	RevokeFamily(ctx context.Context, family string, expiresAt time.Time) error

	// CleanupExpired deletes records that expired before now and reports how
	// many it removed. Stores whose entries expire by themselves return 0.
	CleanupExpired(ctx context.Context, now time.Time) (int, error)

	// Close releases resources the store started (not a database handle or
	// client passed in by the caller).
	Close() error
}

// familyState is the rotation state shared by the Go implementations.
type familyState struct {
	current, previous string
	retiredAt         time.Time // when previous was retired
	revoked           bool
}

type rotation int

const (
	rotateAdvance rotation = iota // presented was current
	rotateGrace                   // presented was previous, within grace
	rotateRevoked                 // family already revoked
	rotateReuse                   // anything else
)

func decideRotation(s familyState, presented string, now time.Time, grace time.Duration) rotation {
	switch {
	case s.revoked:
		return rotateRevoked
	case presented == s.current:
		return rotateAdvance
	case s.previous != "" && presented == s.previous && now.Before(s.retiredAt.Add(grace)):
		return rotateGrace
	default:
		return rotateReuse
	}
}
