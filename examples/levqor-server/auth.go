package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/tokens"
)

// Argon2id parameters: OWASP's second recommended set (19 MiB, 2 passes).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// hashPassword hashes pw NFKC-normalised first, as NIST SP 800-63B asks
// of verifiers that accept Unicode passwords, so the same password typed
// elsewhere (an accent composed or decomposed, full-width letters)
// matches.
func hashPassword(pw string) string { return hashArgon2(norm.NFKC.String(pw)) }

// checkPassword reports whether pw matches encoded: NFKC-normalised, as
// hashPassword stores it, or as typed, as hashes made before the
// normalisation hold it. The second hash runs only when the two forms
// differ and the first did not match, for known and unknown accounts
// alike (dummyHash), so its time tells nothing about which exist.
func checkPassword(encoded, pw string) bool {
	n := norm.NFKC.String(pw)
	return checkArgon2(encoded, n) || (n != pw && checkArgon2(encoded, pw))
}

func hashArgon2(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func checkArgon2(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked when the email is unknown, so both failures take
// the same time. It is computed on first use, not at start-up.
var dummyHash = sync.OnceValue(func() string { return hashPassword("levqor-timing-equaliser") })

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Ref is a partner's referral code (registration only; optional).
	Ref string `json:"ref,omitempty"`
}

// hash runs fn in a password-hashing slot; false means the answer (503)
// was written.
func (a *app) hash(w http.ResponseWriter, r *http.Request, fn func()) bool {
	err := a.hashes.do(r.Context(), fn)
	if err == nil {
		return true
	}
	if errors.Is(err, errBusy) {
		a.metrics.hashBusy.Inc()
	}
	// Busy, or the request's deadline passed while it waited (the client
	// may be gone; if not, it must not get an empty 200).
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "too many logins at once; retry shortly")
	return false
}

func (a *app) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !decode(w, r, &c) {
		return
	}
	email, err := normaliseEmail(c.Email)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkPasswordLength(c.Password); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var hash string
	if !a.hash(w, r, func() { hash = hashPassword(c.Password) }) {
		return
	}
	id := "u_" + randomHex(12)
	now := time.Now().UTC().Format(time.RFC3339)
	// The user and its audit row commit together or not at all.
	err = a.db.inTx(r.Context(), func(tx tx) error {
		if _, err := tx.ExecContext(r.Context(), `INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`, id, email, hash, now); err != nil {
			return err
		}
		if err := recordReferral(r.Context(), tx, id, c.Ref, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `INSERT INTO audit_log (user_id, at, action) VALUES (?, ?, 'register')`, id, now)
		return err
	})
	if err != nil {
		if sqldialect.IsUniqueViolation(err) {
			writeError(w, http.StatusConflict, "an account with this email exists")
			return
		}
		a.storeFailed(w, r, "register", "could not create the account", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"email": email})
}

// errAccountGone means the account was deleted (or is being deleted).
var errAccountGone = errors.New("account deleted")

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !decode(w, r, &c) {
		return
	}
	if err := checkPasswordLength(c.Password); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	email, err := normaliseEmail(c.Email)
	if err != nil {
		email = strings.ToLower(strings.TrimSpace(c.Email)) // still throttled, never found
	}
	key := accountKey(email)
	if a.loginLocked(w, r, key) {
		return
	}
	id, ok := a.checkCredentials(w, r, email, c.Password)
	if !ok {
		// The password was never checked: the attempt does not count.
		if err := a.logins.Release(context.WithoutCancel(r.Context()), key); err != nil {
			a.loginGuardLog.Log(r.Context(), slog.LevelError, "login throttle", "err", err)
		}
		return
	}
	if !a.loginGood(w, r, key, id) {
		return
	}
	pair, err := a.tokens.Issue(r.Context(), id)
	if err != nil {
		a.log.ErrorContext(r.Context(), "issue tokens", "err", err)
		writeError(w, http.StatusServiceUnavailable, "login unavailable")
		return
	}
	if err := a.recordSession(r, id, pair.Family); err != nil {
		if rerr := a.tokens.RevokeFamily(context.WithoutCancel(r.Context()), pair.Family); rerr != nil {
			a.log.ErrorContext(r.Context(), "revoke unrecorded session", "err", rerr)
		}
		if errors.Is(err, errAccountGone) {
			writeError(w, http.StatusUnauthorized, "invalid email or password")
			return
		}
		a.log.ErrorContext(r.Context(), "record session", "err", err)
		writeError(w, http.StatusServiceUnavailable, "login unavailable")
		return
	}
	a.trimSessions(r.Context(), id, pair.Family)
	writePair(w, pair)
}

// sessionStamp is a session's created_at: RFC 3339 with fixed-width
// nanoseconds, so that text order is time order even for logins within
// one second (trimSessions signs out the oldest).
const sessionStamp = "2006-01-02T15:04:05.000000000Z07:00"

// trimBatch bounds the sessions one login signs out (normally one: the
// login that went over the limit).
const trimBatch = 100

// trimSessions signs out the oldest logins of userID beyond
// LEVQOR_MAX_SESSIONS, never the one just made (keep). Every login leaves
// a session and a refresh family until it expires: without a bound, one
// account's logins (a script, a shared password) grow the stores without
// limit, and the account's erasure, which revokes each one, with them. A
// failure is logged and the login stands; the next login trims again.
func (a *app) trimSessions(ctx context.Context, userID, keep string) {
	rows, err := a.db.QueryContext(ctx, `SELECT family_id FROM sessions WHERE user_id = ? AND family_id <> ?
		ORDER BY created_at DESC, family_id DESC LIMIT ? OFFSET ?`, userID, keep, trimBatch, a.cfg.MaxSessions-1)
	if err != nil {
		a.unavailableLog.Log(ctx, slog.LevelError, "trim sessions", "err", err)
		return
	}
	var old []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			break
		}
		old = append(old, f)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		a.unavailableLog.Log(ctx, slog.LevelError, "trim sessions", "err", err)
		return
	}
	for _, f := range old {
		if err := a.tokens.RevokeFamily(ctx, f); err != nil {
			a.unavailableLog.Log(ctx, slog.LevelError, "trim sessions", "err", err)
			return
		}
		if _, err := a.db.ExecContext(ctx, `DELETE FROM sessions WHERE family_id = ?`, f); err != nil {
			a.unavailableLog.Log(ctx, slog.LevelError, "trim sessions", "err", err)
			return
		}
	}
}

// loginLocked counts the attempt with the throttle before any password is
// checked; it answers 429 (or 503 when the throttle cannot be asked) and
// reports true when the account is locked after too many attempts.
func (a *app) loginLocked(w http.ResponseWriter, r *http.Request, key string) bool {
	locked, err := a.logins.Attempt(r.Context(), key)
	if err != nil {
		a.db.closeIdleIfConnLost(err) // the throttle in PostgreSQL: a failover
		a.loginGuardLog.Log(r.Context(), slog.LevelError, "login throttle", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "login unavailable")
		return true
	}
	if locked > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((locked+time.Second-1)/time.Second), 10))
		writeError(w, http.StatusTooManyRequests, "too many failed logins for this account; try again later")
		return true
	}
	return false
}

// checkCredentials looks the account up and checks the password in a
// hashing slot (against a dummy hash for unknown emails, so both failures
// cost the same). It returns the user id; false means the answer (500 or
// 503) was written. A wrong password returns ("", true).
func (a *app) checkCredentials(w http.ResponseWriter, r *http.Request, email, password string) (string, bool) {
	var id, hash string
	err := a.db.QueryRowContext(r.Context(), `SELECT id, password_hash FROM users WHERE email = ? AND deleted_at IS NULL`, email).Scan(&id, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		a.storeFailed(w, r, "login: look up account", "login unavailable", err)
		return "", false
	}
	if err != nil {
		hash = dummyHash()
	}
	var good bool
	if !a.hash(w, r, func() { good = checkPassword(hash, password) && id != "" }) {
		return "", false
	}
	if !good {
		return "", true
	}
	return id, true
}

// loginGood records a success with the throttle (a failure was counted
// as an attempt already); on a failure (id "") it answers 401 and returns
// false.
func (a *app) loginGood(w http.ResponseWriter, r *http.Request, key, id string) bool {
	if id == "" {
		writeError(w, http.StatusUnauthorized, "invalid email or password")
		return false
	}
	if err := a.logins.Succeeded(r.Context(), key); err != nil {
		a.loginGuardLog.Log(r.Context(), slog.LevelError, "login throttle", "err", err)
	}
	return true
}

// recordSession writes the session and audit rows only while the account
// exists and is not being deleted, in one transaction with that check:
// deleteUser marks the account first and then revokes every session it
// can see, so a login racing with it either lands before the mark (its
// session is revoked) or after (errAccountGone).
func (a *app) recordSession(r *http.Request, userID, family string) error {
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = strings.ToValidUTF8(ua[:200], "")
	}
	at := time.Now().UTC()
	now, check := at.Format(time.RFC3339), at.Add(sessionCheckDelay).Format(time.RFC3339)
	return a.db.inTx(r.Context(), func(tx tx) error {
		res, err := tx.ExecContext(r.Context(), `INSERT INTO sessions (family_id, user_id, created_at, user_agent, check_after)
			SELECT CAST(? AS TEXT), id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT) FROM users WHERE id = ? AND deleted_at IS NULL`+a.db.forShare(), family, at.Format(sessionStamp), ua, check, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAccountGone
		}
		_, err = tx.ExecContext(r.Context(), `INSERT INTO audit_log (user_id, at, action) VALUES (?, ?, 'login')`, userID, now)
		return err
	})
}

// writePair answers with the OAuth 2.0 token response (tokens.Pair's JSON).
func writePair(w http.ResponseWriter, p tokens.Pair) { writeJSON(w, http.StatusOK, p) }

func (a *app) refresh(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &body) {
		return
	}
	pair, err := a.tokens.Refresh(r.Context(), body.RefreshToken)
	switch {
	case errors.Is(err, tokens.ErrStore):
		writeError(w, http.StatusServiceUnavailable, "token store unavailable")
		return
	case errors.Is(err, tokens.ErrReused):
		// A retired refresh token came back: it may have been stolen.
		_ = a.notify.Notify(r.Context(), alert.Alert{Severity: alert.SeverityWarning, Title: "Refresh token reuse detected",
			Message: "A retired refresh token was presented; its login's sessions were revoked.", Key: "token-reuse",
			Fields: []alert.Field{{Key: "Client", Value: a.clientIP.Key(r)}}})
		writeError(w, http.StatusUnauthorized, "refresh token reused; all sessions of this login were revoked")
		return
	case err != nil:
		writeError(w, http.StatusUnauthorized, "invalid refresh token")
		return
	}
	writePair(w, pair)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if r.ContentLength != 0 {
		if !decode(w, r, &body) {
			return
		}
	}
	// Validate everything before changing anything: a refusal revokes nothing.
	families := []string{c.Family}
	if body.RefreshToken != "" {
		rc, err := a.tokens.VerifyRefresh(r.Context(), body.RefreshToken)
		switch {
		case errors.Is(err, tokens.ErrStore):
			writeError(w, http.StatusServiceUnavailable, "token store unavailable; nothing was revoked")
			return
		case err == nil && rc.Subject != c.Subject:
			writeError(w, http.StatusForbidden, "that refresh token belongs to someone else")
			return
		case err == nil && rc.Family != c.Family:
			families = append(families, rc.Family)
		}
	}
	if err := a.tokens.RevokeClaims(r.Context(), c); err != nil {
		writeError(w, http.StatusServiceUnavailable, "could not revoke the token")
		return
	}
	for _, f := range families {
		if err := a.tokens.RevokeFamily(r.Context(), f); err != nil {
			writeError(w, http.StatusServiceUnavailable, "could not revoke the session")
			return
		}
	}
	a.auditLog(r.Context(), c.Subject, "logout")
	w.WriteHeader(http.StatusNoContent)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
