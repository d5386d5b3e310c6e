package tokens_test

import (
	"testing"

	"github.com/levqor/levqor/tokens"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-only")

func hmacKey(t testing.TB, kid string) tokens.Key {
	t.Helper()
	k, err := tokens.NewHMACKey(kid, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) tokens.Key {
	t.Helper()
	k, err := tokens.GenerateEd25519Key()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keySet(t testing.TB, signing tokens.Key, accepted ...tokens.Key) *tokens.KeySet {
	t.Helper()
	ks, err := tokens.NewKeySet(signing, accepted...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func memStore(t testing.TB) *tokens.MemoryStore {
	s, err := tokens.NewMemoryStore(tokens.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newManager(t testing.TB, cfg tokens.Config) *tokens.Manager {
	t.Helper()
	m, err := tokens.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
