package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
)

// Supported algorithms. The verifier pins these; the token's own alg header
// only selects among them and must match the algorithm of the key named by kid.
const (
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

// MinHMACSecret is the shortest accepted HS256 secret (RFC 7518 §3.2: at
// least the size of the hash output).
const MinHMACSecret = 32

// Key is one signing key with its key id (kid). Build it with
// GenerateEd25519Key, NewEd25519Key or NewHMACKey. A Key's String and
// MarshalJSON never reveal secret material.
type Key struct {
	id     string
	method jwt.SigningMethod
	sign   any // ed25519.PrivateKey or []byte
	verify any // ed25519.PublicKey or []byte
}

// ID returns the key id placed in the kid header.
func (k Key) ID() string { return k.id }

// Algorithm returns the JWS algorithm of the key (AlgEdDSA or AlgHS256).
func (k Key) Algorithm() string {
	if k.method == nil {
		return ""
	}
	return k.method.Alg()
}

// String names the key without revealing it.
func (k Key) String() string { return "tokens.Key{" + k.Algorithm() + " kid=" + k.id + "}" }

// MarshalJSON writes only the key id and algorithm, never key material, so
// a Key logged or encoded by accident reveals nothing.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}{k.id, k.Algorithm()})
}

// GenerateEd25519Key makes a new Ed25519 key from crypto/rand.
func GenerateEd25519Key() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("tokens: generate ed25519 key: %w", err)
	}
	return NewEd25519Key(priv)
}

// NewEd25519Key wraps an Ed25519 private key. Its kid is the RFC 7638 JWK
// thumbprint of the public key, so the same key always has the same kid.
func NewEd25519Key(priv ed25519.PrivateKey) (Key, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Key{}, fmt.Errorf("tokens: ed25519 private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return Key{id: thumbprint(pub), method: jwt.SigningMethodEdDSA, sign: priv, verify: pub}, nil
}

// NewHMACKey wraps an HS256 secret of at least MinHMACSecret bytes under
// the given non-empty kid.
func NewHMACKey(kid string, secret []byte) (Key, error) {
	if kid == "" {
		return Key{}, fmt.Errorf("tokens: HMAC key needs a kid")
	}
	if len(secret) < MinHMACSecret {
		return Key{}, ErrWeakSecret
	}
	s := append([]byte(nil), secret...)
	return Key{id: kid, method: jwt.SigningMethodHS256, sign: s, verify: s}, nil
}

// Ed25519PrivateKey returns the private key of an EdDSA key, for persisting
// it; ok is false for HMAC keys.
func (k Key) Ed25519PrivateKey() (priv ed25519.PrivateKey, ok bool) {
	priv, ok = k.sign.(ed25519.PrivateKey)
	return priv, ok
}

func thumbprint(pub ed25519.PublicKey) string {
	// RFC 7638 §3.2: members in lexicographic order, no whitespace.
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeySet holds the current signing key and the older keys that are still
// accepted for verification. Rotate a new key in with Rotate (the previous
// signing key stays accepted, so nobody is logged out) and drop an old one
// with Retire once every token it signed has expired. Safe for concurrent use;
// verification reads a snapshot without locking.
type KeySet struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[keySnapshot]
}

type keySnapshot struct {
	signing Key
	byID    map[string]Key
	order   []string // kids, signing key first, for a stable JWKS
}

// NewKeySet returns a set that signs with signing and also accepts the
// accepted keys for verification.
func NewKeySet(signing Key, accepted ...Key) (*KeySet, error) {
	if signing.method == nil {
		return nil, ErrNoKeys
	}
	snap := &keySnapshot{signing: signing, byID: map[string]Key{signing.id: signing}, order: []string{signing.id}}
	for _, k := range accepted {
		if k.method == nil {
			return nil, fmt.Errorf("tokens: zero Key in accepted keys")
		}
		if _, dup := snap.byID[k.id]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, k.id)
		}
		snap.byID[k.id] = k
		snap.order = append(snap.order, k.id)
	}
	ks := &KeySet{}
	ks.snap.Store(snap)
	return ks, nil
}

// Signing returns the current signing key.
func (ks *KeySet) Signing() Key { return ks.snap.Load().signing }

// Lookup returns the key with the given kid, if it is accepted.
func (ks *KeySet) Lookup(kid string) (Key, bool) {
	k, ok := ks.snap.Load().byID[kid]
	return k, ok
}

// Rotate makes next the signing key; the previous signing key stays accepted.
func (ks *KeySet) Rotate(next Key) error {
	if next.method == nil {
		return ErrNoKeys
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old := ks.snap.Load()
	if _, dup := old.byID[next.id]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateKey, next.id)
	}
	snap := &keySnapshot{signing: next, byID: make(map[string]Key, len(old.byID)+1), order: []string{next.id}}
	snap.byID[next.id] = next
	for _, id := range old.order {
		snap.byID[id] = old.byID[id]
		snap.order = append(snap.order, id)
	}
	ks.snap.Store(snap)
	return nil
}

// Retire stops accepting the key with the given kid. Tokens it signed fail
// verification with ErrUnknownKey from then on.
func (ks *KeySet) Retire(kid string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old := ks.snap.Load()
	if old.signing.id == kid {
		return ErrKeyInUse
	}
	if _, ok := old.byID[kid]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	snap := &keySnapshot{signing: old.signing, byID: make(map[string]Key, len(old.byID)-1)}
	for _, id := range old.order {
		if id != kid {
			snap.byID[id] = old.byID[id]
			snap.order = append(snap.order, id)
		}
	}
	ks.snap.Store(snap)
	return nil
}

// JWK is one public key of a JWKS document (RFC 7517, RFC 8037 for OKP).
type JWK struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	KeyID   string `json:"kid"`
	Alg     string `json:"alg"`
	Use     string `json:"use"`
}

// JWKS returns the public keys of the set. HMAC keys are symmetric secrets
// and are never included.
func (ks *KeySet) JWKS() []JWK {
	snap := ks.snap.Load()
	out := make([]JWK, 0, len(snap.order))
	for _, id := range snap.order {
		k := snap.byID[id]
		pub, ok := k.verify.(ed25519.PublicKey)
		if !ok {
			continue
		}
		out = append(out, JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), KeyID: k.id, Alg: AlgEdDSA, Use: "sig"})
	}
	return out
}

// JWKSHandler serves the set's public keys as a JWKS document
// ({"keys":[...]}, Content-Type application/jwk-set+json). It reflects
// rotations immediately; clients may cache it for five minutes.
func JWKSHandler(ks *KeySet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(struct {
			Keys []JWK `json:"keys"`
		}{ks.JWKS()})
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	})
}
