package main_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigningKeyRotation: the signing key is rotated without logging
// anyone out. HS256: every replica first accepts the next secret
// (LEVQOR_JWT_ACCEPT_SECRET) while still signing with the current one,
// then signs with the next and accepts the previous until its tokens
// expire, then drops it, whose tokens are then refused. A token whose kid
// is the one every HS256 token carried before kids named their secret
// ("hs256-env") verifies with the signing secret. EdDSA: the old key file moved to
// jwt-ed25519.accept.key keeps its tokens valid beside a new key. Before,
// the server had one key, and changing it refused every token issued.
func TestSigningKeyRotation(t *testing.T) {
	t.Run("hs256", func(t *testing.T) {
		data := t.TempDir()
		first, next := "first signing secret of 32+ bytes!!", "second signing secret of 32+ bytes!"
		run := func(env ...string) *server {
			t.Helper()
			return start(t, append([]string{"LEVQOR_DATA_DIR=" + data}, env...)...)
		}
		s := run("LEVQOR_JWT_SECRET=" + first)
		expect(t, s.do("POST", "/api/auth/register", "", creds("rot@example.com", "rotation password")), 201, "register")
		oldAccess, oldRefresh := login(t, s, "rot@example.com", "rotation password")
		legacy := resign(t, oldAccess, "hs256-env", first)
		s.stop()

		s = run("LEVQOR_JWT_SECRET="+first, "LEVQOR_JWT_ACCEPT_SECRET="+next)
		expect(t, s.do("GET", "/api/me", oldAccess, ""), 200, "phase 1, a token of the first secret")
		expect(t, s.do("GET", "/api/me", legacy, ""), 200, `phase 1, a token of the first secret with kid "hs256-env"`)
		s.stop()

		s = run("LEVQOR_JWT_SECRET="+next, "LEVQOR_JWT_ACCEPT_SECRET="+first)
		expect(t, s.do("GET", "/api/me", oldAccess, ""), 200, "phase 2, a token of the first secret")
		newAccess, _ := login(t, s, "rot@example.com", "rotation password")
		r := s.do("POST", "/api/auth/refresh", "", `{"refresh_token":"`+oldRefresh+`"}`)
		expect(t, r, 200, "phase 2, refreshing a token of the first secret")
		refreshed, _ := r.json(t)["access_token"].(string)
		expect(t, s.do("GET", "/api/me", refreshed, ""), 200, "phase 2, the refreshed token")
		if strings.Contains(s.logs.String(), "signing key differs") {
			t.Fatalf("a rotation logged as a mismatch:\n%s", s.logs.String())
		}
		out, code := cliEnv(t, data, []string{"LEVQOR_JWT_SECRET=" + next, "LEVQOR_JWT_ACCEPT_SECRET=" + first}, "doctor")
		if !strings.Contains(out, "PASS  keys shared with other replicas") {
			t.Fatalf("doctor during the rotation: exit %d\n%s", code, out)
		}
		s.stop()

		s = run("LEVQOR_JWT_SECRET=" + next)
		expect(t, s.do("GET", "/api/me", oldAccess, ""), 401, "phase 3, a token of the dropped secret")
		expect(t, s.do("GET", "/api/me", newAccess, ""), 200, "phase 3, a token of the new secret")
		expect(t, s.do("GET", "/api/me", refreshed, ""), 200, "phase 3, the refreshed token")
		expect(t, s.do("GET", "/api/me", resign(t, newAccess, "hs256-env", next), ""), 200, `phase 3, kid "hs256-env" names the signing secret`)
		s.stop()

		if _, code := cliEnv(t, data, []string{"LEVQOR_JWT_SECRET=" + next, "LEVQOR_JWT_ACCEPT_SECRET=" + next}, "doctor"); code == 0 {
			t.Fatal("doctor accepted an accept secret equal to the signing secret")
		}
	})

	t.Run("eddsa", func(t *testing.T) {
		data := t.TempDir()
		s := start(t, "LEVQOR_DATA_DIR="+data)
		expect(t, s.do("POST", "/api/auth/register", "", creds("ed@example.com", "rotation password")), 201, "register")
		oldAccess, _ := login(t, s, "ed@example.com", "rotation password")
		s.stop()
		key := filepath.Join(data, "jwt-ed25519.key")
		if err := os.Rename(key, filepath.Join(data, "jwt-ed25519.accept.key")); err != nil {
			t.Fatal(err)
		}
		s = start(t, "LEVQOR_DATA_DIR="+data) // makes a new signing key
		expect(t, s.do("GET", "/api/me", oldAccess, ""), 200, "a token of the accepted key")
		newAccess, _ := login(t, s, "ed@example.com", "rotation password")
		if kid(t, newAccess) == kid(t, oldAccess) {
			t.Fatal("the new key signs with the old key's kid")
		}
		s.stop()
		if err := os.Remove(filepath.Join(data, "jwt-ed25519.accept.key")); err != nil {
			t.Fatal(err)
		}
		s = start(t, "LEVQOR_DATA_DIR="+data)
		expect(t, s.do("GET", "/api/me", oldAccess, ""), 401, "a token of the removed key")
		expect(t, s.do("GET", "/api/me", newAccess, ""), 200, "a token of the new key")
		s.stop()
	})
}

// resign returns token with its header's kid replaced and signed again
// with an HS256 secret.
func resign(t *testing.T, token, kid, secret string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	var h map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("token header: %v", err)
	}
	h["kid"] = kid
	b, _ := json.Marshal(h)
	signed := base64.RawURLEncoding.EncodeToString(b) + "." + parts[1]
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// kid is a token's header kid.
func kid(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct{ Kid string }
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}
