package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/levqor/levqor/tokens"
)

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	if acc, ok := a.accounts.get(c.Subject); ok {
		writeBody(w, acc.body)
		return
	}
	var email, created string
	err := a.db.QueryRowContext(r.Context(), `SELECT email, created_at FROM users WHERE id = ? AND deleted_at IS NULL`, c.Subject).Scan(&email, &created)
	if errors.Is(err, sql.ErrNoRows) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "account no longer exists")
		return
	}
	if err != nil {
		a.storeFailed(w, r, "me: load account", "could not load the account", err)
		return
	}
	body, _ := json.Marshal(map[string]string{"email": email, "created_at": created})
	body = append(body, '\n')
	a.accounts.put(c.Subject, account{email, created, body})
	writeBody(w, body)
}

// Header values of writeBody, shared by every response.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// writeBody answers 200 with a JSON body already encoded, with the headers
// of writeJSON.
func writeBody(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = jsonContentType, noStore
	_, _ = w.Write(body)
}

// deleteUser erases the account (Art. 17). Order matters: the account is
// first marked as being deleted (no login, session or audit row can be
// created for it from then on), then every session recorded up to the mark
// is revoked, then the DSAR sources erase or pseudonymise the data. After
// the 204, no token issued before or during the deletion works.
func (a *app) deleteUser(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	ctx := r.Context()
	var families []string
	a.accounts.forget(c.Subject)
	defer a.accounts.forget(c.Subject) // a concurrent /api/me may have cached it again
	err := a.db.inTx(ctx, func(tx tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, time.Now().UTC().Format(time.RFC3339), c.Subject); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT family_id FROM sessions WHERE user_id = ?`, c.Subject)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				return err
			}
			families = append(families, f)
		}
		return rows.Err()
	})
	if err != nil {
		a.storeFailed(w, r, "delete: mark account", "could not delete the account; nothing was erased", err)
		return
	}
	// The rest must finish even if the client goes away (or the request's
	// deadline passes), though not wait forever on a store that hangs.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	for _, f := range append(families, c.Family) {
		if err := a.tokens.RevokeFamily(ctx, f); err != nil {
			writeError(w, http.StatusServiceUnavailable, "could not revoke sessions; nothing was erased")
			return
		}
	}
	if _, err := a.dsar.Erase(ctx, c.Subject, "self-service"); err != nil {
		a.log.ErrorContext(ctx, "erase", "err", err)
		writeError(w, http.StatusInternalServerError, "erasure failed; please retry")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// auditLog records an action of a live account; nothing is written for an
// account being deleted, so no row of an erased user reappears.
func (a *app) auditLog(ctx context.Context, userID, action string) {
	_, err := a.db.ExecContext(ctx, `INSERT INTO audit_log (user_id, at, action)
		SELECT id, CAST(? AS TEXT), CAST(? AS TEXT) FROM users WHERE id = ? AND deleted_at IS NULL`+a.db.forShare(), time.Now().UTC().Format(time.RFC3339), action, userID)
	if err != nil {
		a.log.ErrorContext(ctx, "audit log", "err", err)
	}
}
