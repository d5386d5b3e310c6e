package main_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

// TestForgedTokensStopCostingSignatures: a client that keeps sending
// forged tokens (claims that pass, a bad signature: an Ed25519 check, about
// 40 µs, each) has its tokens checked only if the server verified or
// issued them, once it passed 20 forged ones: a genuine token the server
// never saw (issued before it restarted) is refused unverified, one
// issued to someone at that address meanwhile works (the server
// remembers the tokens it issues; before, it was refused until the forging
// stopped),
// as does one they had used, and other addresses are not affected.
func TestForgedTokensStopCostingSignatures(t *testing.T) {
	env := []string{"LEVQOR_RATE_LIMIT=100000/m", "LEVQOR_DATA_DIR=" + t.TempDir()}
	s := start(t, env...)
	expect(t, s.do("POST", "/api/auth/register", "", creds("near@example.com", "password near")), 201, "register")
	unseen, _ := login(t, s, "near@example.com", "password near")
	s.stop()
	s = start(t, env...)
	known, _ := login(t, s, "near@example.com", "password near")
	expect(t, s.do("GET", "/api/me", known, ""), 200, "a token used before the attack")

	head, _, _ := strings.Cut(known, ".")
	claims := strings.Split(known, ".")[1]
	forge := func() string {
		sig := make([]byte, 64)
		_, _ = rand.Read(sig)
		return head + "." + claims + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	for i := range 20 {
		r := s.do("GET", "/api/me", forge(), "")
		expect(t, r, 401, "forged token "+string(rune('0'+i%10)))
	}
	fresh, _ := login(t, s, "near@example.com", "password near") // issued during the block
	for range 5 {
		expect(t, s.do("GET", "/api/me", forge(), ""), 401, "a forged token past the limit")
	}
	if r := s.do("GET", "/api/me", unseen, ""); r.status != 401 || !strings.Contains(r.body, "invalid") {
		t.Fatalf("a genuine token this server never saw, from the blocked address: %d %s; want 401 unverified", r.status, r.body)
	}
	expect(t, s.do("GET", "/api/me", fresh, ""), 200, "a token issued during the block, from the blocked address")
	expect(t, s.do("GET", "/api/me", known, ""), 200, "a token verified before, from the blocked address")
	if n := strings.Count(s.logs.String(), `msg="forged tokens: an address's new tokens go unverified for a while"`); n != 1 {
		t.Fatalf("the block was logged %d times; want once", n)
	}
}
