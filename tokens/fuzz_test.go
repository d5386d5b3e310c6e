package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/levqor/levqor/tokens"
)

var verifyErrors = []error{
	tokens.ErrMalformed, tokens.ErrTooLarge, tokens.ErrAlgorithm, tokens.ErrUnknownKey,
	tokens.ErrSignature, tokens.ErrExpired, tokens.ErrNotYetValid, tokens.ErrIssuer,
	tokens.ErrAudience, tokens.ErrMissingClaim, tokens.ErrWrongType, tokens.ErrRevoked,
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and
// must either accept a token for the issued subject or return one of the
// documented sentinels. Without -fuzz it runs the seed corpus.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	now := func() time.Time { return fixedNow }
	ks := keySet(f, edKey(f), hmacKey(f, "hs"))
	m := newManager(f, tokens.Config{Keys: ks, Store: memStore(f), Now: now})
	p, err := m.Issue(ctx, "fuzz-subject")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.AccessToken)
	f.Add(p.RefreshToken)
	f.Add(p.AccessToken[:len(p.AccessToken)-3])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Add("a.b.c.d")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := m.Verify(ctx, token)
		if err == nil {
			if c == nil || c.Subject != "fuzz-subject" {
				t.Fatalf("accepted a token with claims %+v", c)
			}
			return
		}
		for _, s := range verifyErrors {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}
