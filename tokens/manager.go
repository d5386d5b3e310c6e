package tokens

import (
	"github.com/levqor/levqor/internal/defaults"

	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for Config's zero fields.
const (
	DefaultIssuer         = "levqor"
	DefaultAudience       = "levqor-api"
	DefaultClientID       = "levqor"
	DefaultAccessTTL      = 15 * time.Minute
	DefaultRefreshTTL     = 7 * 24 * time.Hour
	DefaultLeeway         = 30 * time.Second
	DefaultRefreshGrace   = 5 * time.Second
	DefaultMaxTokenLength = 4096
)

// Config configures a Manager. Zero fields take the documented defaults.
type Config struct {
	// Keys signs new tokens and verifies presented ones. Required.
	Keys *KeySet
	// Store records revocations and refresh families. Required.
	Store Store
	// Revocations answers Verify's revocation check. Default: Store. Set it
	// to put a cache in front of the Store; revocations go to the Store.
	Revocations RevocationChecker

	// Issuer is the iss claim of every token and the aud of refresh tokens,
	// which only this issuer consumes. Default DefaultIssuer.
	Issuer string
	// Audience is the aud claim of access tokens. Default DefaultAudience.
	Audience string
	// ClientID is the client_id claim of access tokens (RFC 9068 §2.2).
	// Default DefaultClientID.
	ClientID string
	// AccessTTL is the lifetime of access tokens. Default DefaultAccessTTL (15m).
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of each refresh token. Default DefaultRefreshTTL (7d).
	RefreshTTL time.Duration
	// Leeway tolerates clock skew on exp, nbf and iat. Default DefaultLeeway
	// (30s); negative means none.
	Leeway time.Duration
	// RefreshGrace is how long after a rotation the previous refresh token may
	// be exchanged again, so concurrent refreshes by one client do not count
	// as reuse. Default DefaultRefreshGrace (5s); negative disables it.
	RefreshGrace time.Duration
	// MaxTokenLength caps the length of a presented token; longer input is
	// rejected with ErrTooLarge before any parsing. Default DefaultMaxTokenLength.
	MaxTokenLength int
	// FailOpen accepts a correctly signed, unexpired access token when the
	// Store cannot be asked whether it was revoked. Default false: Verify
	// returns ErrStore and the middleware answers 503.
	FailOpen bool
	// VerifiedCacheSize is how many verified access tokens Verify remembers
	// (whole token as the key), so a repeated token skips parsing and the
	// signature check; the revocation check runs on every call. Access
	// tokens the Manager issues are remembered as they are issued (it has
	// just signed them), so their first use skips the signature check
	// too. Default DefaultVerifiedCacheSize (10,000, about 1 KiB each);
	// negative disables it.
	VerifiedCacheSize int
	// Logger receives reuse detections and fail-open events (never tokens).
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Manager issues, verifies, rotates and revokes tokens. Safe for concurrent use.
type Manager struct {
	cfg   Config
	grace time.Duration
	// access and refresh check each type's claims (golang-jwt's
	// validator: exp, nbf, iat, iss, aud with the leeway); Revoke checks
	// none (nil).
	access  *jwt.Validator
	refresh *jwt.Validator
	cache   *verifiedCache // nil when disabled
}

// Pair is the result of Issue and Refresh. Marshalled to JSON it is an
// OAuth 2.0 token response (RFC 6749 §5.1): access_token, token_type,
// expires_in and refresh_token; the other fields stay server-side.
type Pair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"` // always "Bearer"
	ExpiresIn    int64  `json:"expires_in"` // access token lifetime, seconds
	RefreshToken string `json:"refresh_token"`

	AccessExpiresAt  time.Time `json:"-"`
	RefreshExpiresAt time.Time `json:"-"`
	Family           string    `json:"-"`
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Keys == nil {
		return nil, fmt.Errorf("tokens: Config.Keys is required")
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("tokens: Config.Store is required")
	}
	if cfg.Revocations == nil {
		cfg.Revocations = cfg.Store
	}
	if cfg.AccessTTL < 0 || cfg.RefreshTTL < 0 || cfg.MaxTokenLength < 0 {
		return nil, fmt.Errorf("tokens: AccessTTL, RefreshTTL and MaxTokenLength must not be negative")
	}
	defaults.Set(&cfg.Issuer, DefaultIssuer)
	defaults.Set(&cfg.Audience, DefaultAudience)
	defaults.Set(&cfg.ClientID, DefaultClientID)
	defaults.Set(&cfg.AccessTTL, DefaultAccessTTL)
	defaults.Set(&cfg.RefreshTTL, DefaultRefreshTTL)
	defaults.Set(&cfg.Leeway, DefaultLeeway)
	defaults.Set(&cfg.RefreshGrace, DefaultRefreshGrace)
	defaults.Set(&cfg.MaxTokenLength, DefaultMaxTokenLength)
	defaults.Set(&cfg.VerifiedCacheSize, DefaultVerifiedCacheSize)
	if cfg.Leeway < 0 {
		cfg.Leeway = 0
	}
	if cfg.AccessTTL > cfg.RefreshTTL {
		return nil, fmt.Errorf("tokens: AccessTTL (%v) longer than RefreshTTL (%v)", cfg.AccessTTL, cfg.RefreshTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, grace: max(cfg.RefreshGrace, 0), cache: newVerifiedCache(cfg.VerifiedCacheSize)}
	common := []jwt.ParserOption{
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	m.access = jwt.NewValidator(append(common, jwt.WithAudience(cfg.Audience))...)
	m.refresh = jwt.NewValidator(append(common, jwt.WithAudience(cfg.Issuer))...)
	return m, nil
}

// Issue starts a new refresh family for subject and returns its first pair.
func (m *Manager) Issue(ctx context.Context, subject string) (Pair, error) {
	if subject == "" {
		return Pair{}, fmt.Errorf("%w: empty subject", ErrMissingClaim)
	}
	now := m.cfg.Now()
	family, jti := newID(), newID()
	if err := m.cfg.Store.CreateFamily(ctx, family, subject, jti, now.Add(m.cfg.RefreshTTL)); err != nil {
		return Pair{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return m.mint(subject, family, jti, now)
}

// Verify checks an access token (signature, algorithm, kid, type, issuer,
// audience, times, required claims) and asks the Store, in one round trip,
// whether it or its family was revoked.
func (m *Manager) Verify(ctx context.Context, token string) (*Claims, error) {
	c, err := m.verifyAccess(token)
	if err != nil {
		return nil, err
	}
	revoked, err := m.cfg.Revocations.Revoked(ctx, c.Family, c.ID)
	if err != nil {
		if m.cfg.FailOpen && ctx.Err() == nil {
			m.cfg.Logger.WarnContext(ctx, "tokens: revocation check failed; accepting token (FailOpen)", "subject", c.Subject, "err", err)
			return c, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if revoked {
		return nil, ErrRevoked
	}
	return c, nil
}

// Cached reports whether token is in the verified-token cache: its
// signature and claims were checked, or this Manager issued it, and it is
// still within its validity under the current keys, so Verify will do no
// signature work for it. It does not check revocation (Verify does).
// Always false without the cache (Config.VerifiedCacheSize < 0). A server refusing to verify new tokens
// from a client that keeps sending forged ones uses it to keep serving
// the tokens it already knows.
func (m *Manager) Cached(token string) bool {
	return m.cache != nil && m.cache.has(token, m.cfg.Keys.snap.Load(), m.cfg.Now())
}

// verifyAccess parses and checks an access token, or finds it verified in
// the cache.
func (m *Manager) verifyAccess(token string) (*Claims, error) {
	if m.cache == nil {
		return m.parse(m.access, token, TypeAccess)
	}
	keys, now := m.cfg.Keys.snap.Load(), m.cfg.Now()
	if c, ok := m.cache.get(token, keys, now); ok {
		return c, nil
	}
	c, err := m.parse(m.access, token, TypeAccess)
	if err != nil {
		return nil, err
	}
	m.remember(token, c, keys)
	return c, nil
}

// remember puts verified claims in the cache for the window in which the
// parser accepts them: iat and nbf not in the future, exp not past, each
// with the leeway.
func (m *Manager) remember(token string, c *Claims, keys *keySnapshot) {
	from := c.IssuedAt
	if c.NotBefore.After(from) {
		from = c.NotBefore
	}
	m.cache.put(token, c, keys, from.Add(-m.cfg.Leeway), c.ExpiresAt.Add(m.cfg.Leeway))
}

// rememberIssued puts an access token the Manager has just signed with
// keys' signing key in the verified-token cache, its claims decoded as
// parse decodes them (the signature check parse would make cannot fail):
// its first use costs no signature check, and Cached knows it, so a
// server that stops verifying new tokens from an address sending forged
// ones still takes the ones it issued there.
func (m *Manager) rememberIssued(token string, keys *keySnapshot) {
	if m.cache == nil {
		return
	}
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	var w parsedClaims
	if err := decodeSegment(payload, &w); err != nil {
		return
	}
	m.remember(token, w.claims(TypeAccess), keys)
}

// Refresh exchanges a refresh token for a new pair in the same family and
// retires the one presented. Presenting a retired refresh token (outside the
// grace period) revokes the whole family and returns ErrReused.
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	c, err := m.parse(m.refresh, refreshToken, TypeRefresh)
	if err != nil {
		return Pair{}, err
	}
	now := m.cfg.Now()
	jti, err := m.cfg.Store.Rotate(ctx, Rotation{Family: c.Family, Presented: c.ID, Next: newID(), Now: now, Grace: m.grace, ExpiresAt: now.Add(m.cfg.RefreshTTL)})
	switch {
	case errors.Is(err, ErrReused):
		m.cfg.Logger.WarnContext(ctx, "tokens: refresh token reuse detected; family revoked", "subject", c.Subject, "family", c.Family)
		return Pair{}, err
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrUnknownFamily):
		return Pair{}, err
	case err != nil:
		return Pair{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return m.mint(c.Subject, c.Family, jti, now)
}

// Revoke revokes a token issued by this Manager: an access token by its jti,
// a refresh token with its whole family. An expired token needs no
// revocation and returns nil.
func (m *Manager) Revoke(ctx context.Context, token string) error {
	c, err := m.parse(nil, token, "")
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	now := m.cfg.Now()
	if c.ExpiresAt.IsZero() || !c.ExpiresAt.Add(m.cfg.Leeway).After(now) {
		return nil
	}
	if c.Type == TypeRefresh {
		return m.RevokeFamily(ctx, c.Family)
	}
	return m.RevokeClaims(ctx, c)
}

// RevokeClaims revokes the single token described by verified claims, such
// as those FromContext returns.
func (m *Manager) RevokeClaims(ctx context.Context, c *Claims) error {
	if c == nil || c.ID == "" || c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: jti or exp", ErrMissingClaim)
	}
	if err := m.cfg.Store.RevokeToken(ctx, c.Family, c.ID, c.ExpiresAt.Add(m.cfg.Leeway)); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}

// RevokeFamily revokes a refresh family: every refresh and access token
// issued in it is rejected from now on.
func (m *Manager) RevokeFamily(ctx context.Context, family string) error {
	if family == "" {
		return fmt.Errorf("%w: fid", ErrMissingClaim)
	}
	// No token of the family can outlive a refresh token minted now.
	until := m.cfg.Now().Add(m.cfg.RefreshTTL + m.cfg.Leeway)
	if err := m.cfg.Store.RevokeFamily(ctx, family, until); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}

// CleanupExpired asks the Store to drop records of tokens that expired.
func (m *Manager) CleanupExpired(ctx context.Context) (int, error) {
	return m.cfg.Store.CleanupExpired(ctx, m.cfg.Now())
}

func (m *Manager) mint(subject, family, refreshJTI string, now time.Time) (Pair, error) {
	// One snapshot for signing and for the cache entry: a rotation in
	// between makes the entry stale (Verify parses again) rather than
	// recording a token under keys that may no longer accept it.
	keys := m.cfg.Keys.snap.Load()
	key := keys.signing
	iat := jwt.NewNumericDate(now)
	p := Pair{
		TokenType:        "Bearer",
		ExpiresIn:        int64(m.cfg.AccessTTL.Round(time.Second) / time.Second),
		AccessExpiresAt:  now.Add(m.cfg.AccessTTL),
		RefreshExpiresAt: now.Add(m.cfg.RefreshTTL),
		Family:           family,
	}
	var err error
	p.AccessToken, err = sign(key, TypeAccess, &wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: m.cfg.Issuer, Subject: subject, Audience: jwt.ClaimStrings{m.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(p.AccessExpiresAt), IssuedAt: iat, ID: newID(),
		},
		ClientID: m.cfg.ClientID,
		Family:   family,
	})
	if err != nil {
		return Pair{}, err
	}
	m.rememberIssued(p.AccessToken, keys)
	p.RefreshToken, err = sign(key, TypeRefresh, &wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: m.cfg.Issuer, Subject: subject, Audience: jwt.ClaimStrings{m.cfg.Issuer},
			ExpiresAt: jwt.NewNumericDate(p.RefreshExpiresAt), IssuedAt: iat, ID: refreshJTI,
		},
		Family: family,
	})
	if err != nil {
		return Pair{}, err
	}
	return p, nil
}

func sign(key Key, typ Type, c *wireClaims) (string, error) {
	t := jwt.NewWithClaims(key.method, c)
	t.Header["typ"] = string(typ)
	t.Header["kid"] = key.id
	s, err := t.SignedString(key.sign)
	if err != nil {
		return "", fmt.Errorf("tokens: sign %s token: %w", typ, err)
	}
	return s, nil
}

// newID returns 128 random bits, base64url encoded.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// VerifyRefresh checks a refresh token (signature, type, issuer, times)
// and its family's revocation without rotating it, e.g. to check who owns
// a refresh token before revoking it.
func (m *Manager) VerifyRefresh(ctx context.Context, refreshToken string) (*Claims, error) {
	c, err := m.parse(m.refresh, refreshToken, TypeRefresh)
	if err != nil {
		return nil, err
	}
	revoked, err := m.cfg.Store.Revoked(ctx, c.Family, c.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if revoked {
		return nil, ErrRevoked
	}
	return c, nil
}
