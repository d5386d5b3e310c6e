package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// keyFingerprint identifies a secret without revealing it: the first 16
// hex digits of SHA-256 over a domain prefix, the key's name and the
// secret (a 32-byte secret cannot be recovered from it).
func keyFingerprint(name string, secret []byte) string {
	h := sha256.New()
	h.Write([]byte("levqor-server replica key\x00" + name + "\x00"))
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// agreeOnKeys makes replicas on one database notice keys they do not
// share. The first replica records each key's fingerprint; later ones
// compare:
//   - the DSAR key pseudonymises erased subjects and identifies DSAR
//     requests, so it can never change: a different one refuses start-up;
//   - the signing key may be rotated (on every replica), so a different one
//     is recorded as the current one, and logged as an error unless this
//     replica accepts the recorded key (a rotation under way); doctor on a
//     replica holding neither then fails.
func agreeOnKeys(ctx context.Context, db *database, dsarKey, signing, accept []byte, log *slog.Logger) error {
	got, recorded, err := recordKey(ctx, db, "dsar", dsarKey)
	if err != nil {
		return err
	}
	if got != recorded {
		return fmt.Errorf("the DSAR key (LEVQOR_DSAR_KEY, or dsar.key in the data directory) differs from the one this database's data was pseudonymised with (fingerprint %s, this replica %s): give every replica the same LEVQOR_DSAR_KEY", recorded, got)
	}
	got, recorded, err = recordKey(ctx, db, "signing", signing)
	if err != nil {
		return err
	}
	if got != recorded {
		if accept != nil && keyFingerprint("signing", accept) == recorded {
			// A rotation under way: each side accepts the other's tokens.
			log.Info("signing key rotation: the key recorded by another replica is this replica's accepted key", "recorded", recorded, "this_replica", got)
		} else {
			log.Error("this replica's signing key differs from the one another replica on this database uses: tokens each issues are refused by the other; give every replica the same LEVQOR_JWT_SECRET (to rotate it, see README)", "recorded", recorded, "this_replica", got)
		}
		if _, err := db.ExecContext(ctx, `UPDATE replica_keys SET fingerprint = ? WHERE name = 'signing'`, got); err != nil {
			return fmt.Errorf("replica keys: %w", err)
		}
	}
	return nil
}

// recordKey records name's fingerprint unless one is recorded, and
// returns this process' fingerprint and the recorded one.
func recordKey(ctx context.Context, db *database, name string, secret []byte) (got, recorded string, err error) {
	got = keyFingerprint(name, secret)
	if _, err := db.ExecContext(ctx, `INSERT INTO replica_keys (name, fingerprint) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, got); err != nil {
		return "", "", fmt.Errorf("replica keys: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT fingerprint FROM replica_keys WHERE name = ?`, name).Scan(&recorded); err != nil {
		return "", "", fmt.Errorf("replica keys: %w", err)
	}
	return got, recorded, nil
}

// checkKeys is doctor's view of agreeOnKeys: FAIL when this replica's keys
// (dsarKey, and signing as signingSecret gives it) differ from the
// recorded ones.
func checkKeys(ctx context.Context, db *database, dsarKey, signing, accept []byte) error {
	for _, k := range []struct {
		name   string
		secret []byte
		env    string
	}{{"dsar", dsarKey, "LEVQOR_DSAR_KEY"}, {"signing", signing, "LEVQOR_JWT_SECRET"}} {
		recorded, ok := recordedFingerprint(ctx, db, k.name)
		if !ok {
			continue // not recorded yet: the server records it at start
		}
		if k.name == "signing" && accept != nil && keyFingerprint(k.name, accept) == recorded {
			continue // a rotation under way: this replica accepts the recorded key
		}
		if got := keyFingerprint(k.name, k.secret); got != recorded {
			return fmt.Errorf("the %s key differs from the one recorded in the database (fingerprint %s, this replica %s): set the same %s on every replica", k.name, recorded, got, k.env)
		}
	}
	return nil
}

// recordedFingerprint is the fingerprint recorded for key name, if any.
func recordedFingerprint(ctx context.Context, db *database, name string) (string, bool) {
	var fp string
	err := db.QueryRowContext(ctx, `SELECT fingerprint FROM replica_keys WHERE name = ?`, name).Scan(&fp)
	return fp, err == nil
}

// dsarKeyLost refuses to start with a newly made DSAR key on a database
// whose data was pseudonymised with another: when dsar.key is missing
// (a database restored on a new machine, without its key file) and
// LEVQOR_DSAR_KEY is unset, but the database records a DSAR key. Making a
// key first would leave a wrong key file behind and a vaguer message.
func dsarKeyLost(ctx context.Context, db *database, c config) error {
	if c.DSARKey != nil {
		return nil
	}
	path := filepath.Join(c.DataDir, dsarKeyFile)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if fp, ok := recordedFingerprint(ctx, db, "dsar"); ok {
		return fmt.Errorf("%s is missing, and this database's data was pseudonymised with a DSAR key (fingerprint %s): copy dsar.key from the data directory the database came from, or set LEVQOR_DSAR_KEY to that key; a new key would not match", path, fp)
	}
	return nil
}

// Key files in the data directory, made by the server on first start
// unless LEVQOR_DSAR_KEY or LEVQOR_JWT_SECRET is set.
const (
	dsarKeyFile    = "dsar.key"
	signingKeyFile = "jwt-ed25519.key"
	// acceptKeyFile, only when present (never made), holds the Ed25519
	// seed of a rotation's other key: its tokens verify, it never signs.
	acceptKeyFile = "jwt-ed25519.accept.key"
)

// loadDSARKey is LEVQOR_DSAR_KEY, else a key generated once in the data
// directory.
func loadDSARKey(c config) ([]byte, error) {
	if c.DSARKey != nil {
		return c.DSARKey, nil
	}
	return loadSecret(filepath.Join(c.DataDir, dsarKeyFile))
}

// signingSecret is the secret behind the signing key: LEVQOR_JWT_SECRET,
// else the Ed25519 seed generated once in the data directory.
func signingSecret(c config) ([]byte, error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), nil
	}
	return loadSecret(filepath.Join(c.DataDir, signingKeyFile))
}
