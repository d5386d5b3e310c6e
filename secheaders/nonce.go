package secheaders

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// NonceBytes is the nonce's entropy: 128 bits, as CSP3 §7.1 recommends.
const NonceBytes = 16

// nonceCSP makes a fresh nonce and the CSP containing it in one allocation;
// the nonce returned is a substring of that header value.
func (h *Headers) nonceCSP() (nonce, csp string) {
	var raw [NonceBytes]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	const encLen = (NonceBytes + 2) / 3 * 4
	var enc [encLen]byte
	base64.StdEncoding.Encode(enc[:], raw[:])
	n := 0
	for _, p := range h.cspParts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n + encLen*(len(h.cspParts)-1))
	first := 0
	for i, p := range h.cspParts {
		b.WriteString(p)
		if i < len(h.cspParts)-1 {
			if i == 0 {
				first = b.Len()
			}
			b.Write(enc[:])
		}
	}
	csp = b.String()
	return csp[first : first+encLen], csp
}

type nonceKey struct{}

// nonceCtx carries the nonce and holds the CSP header slice, so a request
// costs one allocation for both instead of three (WithValue, boxing, slice).
type nonceCtx struct {
	context.Context
	nonce  string
	header [1]string
}

func (c *nonceCtx) Value(key any) any {
	if key == (nonceKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// Nonce returns the request's CSP nonce for templates
// (<script nonce="{{.Nonce}}">), or "" when the policy uses none.
func Nonce(ctx context.Context) string {
	if c, ok := ctx.Value(nonceKey{}).(*nonceCtx); ok {
		return c.nonce
	}
	return ""
}
