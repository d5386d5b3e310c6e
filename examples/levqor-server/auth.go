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
	"net/http"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/tokens"
)

// Argon2id parameters: OWASP's second recommended set (19 MiB, 2 passes).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

func hashPassword(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func checkPassword(encoded, pw string) bool {
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
// the same time.
var dummyHash = hashPassword("levqor-timing-equaliser")

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func normaliseEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || len(s) > 254 || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
		return "", false
	}
	return strings.ToLower(s), true
}

func (a *app) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !decode(w, r, &c) {
		return
	}
	email, ok := normaliseEmail(c.Email)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid email address")
		return
	}
	if len(c.Password) < 8 || len(c.Password) > 1024 {
		writeError(w, http.StatusBadRequest, "password must be 8 to 1024 characters")
		return
	}
	id := "u_" + randomHex(12)
	now := time.Now().UTC()
	_, err := a.db.ExecContext(r.Context(), `INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		id, email, hashPassword(c.Password), now.Format(time.RFC3339))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			writeError(w, http.StatusConflict, "an account with this email exists")
			return
		}
		a.log.ErrorContext(r.Context(), "register", "err", err)
		writeError(w, http.StatusInternalServerError, "could not create the account")
		return
	}
	a.auditLog(r.Context(), id, "register")
	writeJSON(w, http.StatusCreated, map[string]string{"email": email})
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !decode(w, r, &c) {
		return
	}
	email, _ := normaliseEmail(c.Email)
	var id, hash string
	err := a.db.QueryRowContext(r.Context(), `SELECT id, password_hash FROM users WHERE email = ?`, email).Scan(&id, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		writeError(w, http.StatusInternalServerError, "login unavailable")
		return
	}
	if err != nil {
		hash = dummyHash
	}
	if !checkPassword(hash, c.Password) || id == "" {
		writeError(w, http.StatusUnauthorized, "invalid email or password")
		return
	}
	pair, err := a.tokens.Issue(r.Context(), id)
	if err != nil {
		a.log.ErrorContext(r.Context(), "issue tokens", "err", err)
		writeError(w, http.StatusServiceUnavailable, "login unavailable")
		return
	}
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	_, _ = a.db.ExecContext(r.Context(), `INSERT INTO sessions (family_id, user_id, created_at, user_agent) VALUES (?, ?, ?, ?)`,
		pair.Family, id, time.Now().UTC().Format(time.RFC3339), ua)
	a.auditLog(r.Context(), id, "login")
	writePair(w, pair)
}

func writePair(w http.ResponseWriter, p tokens.Pair) {
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": p.AccessToken, "refresh_token": p.RefreshToken,
		"token_type": "Bearer", "expires_in": p.ExpiresIn(time.Now()),
	})
}

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
		_ = a.alerts.Notify(r.Context(), alert.Alert{Severity: alert.SeverityWarning, Title: "Refresh token reuse detected",
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
	if err := a.tokens.RevokeClaims(r.Context(), c); err != nil {
		writeError(w, http.StatusServiceUnavailable, "could not revoke the token")
		return
	}
	families := []string{c.Family}
	if body.RefreshToken != "" {
		rc, err := a.tokens.VerifyRefresh(r.Context(), body.RefreshToken)
		if err == nil && rc.Subject != c.Subject {
			writeError(w, http.StatusForbidden, "that refresh token belongs to someone else")
			return
		}
		if err == nil {
			families = append(families, rc.Family)
		}
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

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	var email, created string
	err := a.db.QueryRowContext(r.Context(), `SELECT email, created_at FROM users WHERE id = ?`, c.Subject).Scan(&email, &created)
	if errors.Is(err, sql.ErrNoRows) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "account no longer exists")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not load the account")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"email": email, "created_at": created})
}

// deleteUser erases the account (Art. 17): every session is revoked first,
// then the DSAR sources erase or pseudonymise the user's data.
func (a *app) deleteUser(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	rows, err := a.db.QueryContext(r.Context(), `SELECT family_id FROM sessions WHERE user_id = ?`, c.Subject)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not list sessions")
		return
	}
	var families []string
	for rows.Next() {
		var f string
		if rows.Scan(&f) == nil {
			families = append(families, f)
		}
	}
	rows.Close()
	for _, f := range append(families, c.Family) {
		if err := a.tokens.RevokeFamily(r.Context(), f); err != nil {
			writeError(w, http.StatusServiceUnavailable, "could not revoke sessions; nothing was erased")
			return
		}
	}
	if _, err := a.dsar.Erase(r.Context(), c.Subject, "self-service"); err != nil {
		a.log.ErrorContext(r.Context(), "erase", "err", err)
		writeError(w, http.StatusInternalServerError, "erasure failed; please retry")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) auditLog(ctx context.Context, userID, action string) {
	_, _ = a.db.ExecContext(ctx, `INSERT INTO audit_log (user_id, at, action) VALUES (?, ?, ?)`, userID, time.Now().UTC().Format(time.RFC3339), action)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
