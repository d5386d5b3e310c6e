package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/payout"
	"github.com/levqor/levqor/tokens"
)

// Partner programme pages of GET /api/partners/me.
const (
	defaultPartnerPage = 20
	maxPartnerPage     = 100
)

// becomePartner is POST /api/partners: the caller becomes a partner with
// a Stripe Connect Express account, and gets a referral code and the
// Stripe onboarding link. The account is created with an idempotency key
// derived from the user, so a retried or doubled request never creates a
// second one; until Stripe reports payouts_enabled (account.updated) the
// partner accrues commissions but is paid nothing.
func (a *app) becomePartner(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	ctx := r.Context()
	if a.cfg.StripeKey == "" {
		writeError(w, http.StatusServiceUnavailable, "the partner programme is not configured")
		return
	}
	var exists int
	switch err := a.db.QueryRowContext(ctx, `SELECT 1 FROM partner_codes WHERE user_id = ?`, c.Subject).Scan(&exists); {
	case err == nil:
		writeError(w, http.StatusConflict, "already a partner")
		return
	case !errors.Is(err, sql.ErrNoRows):
		a.storeFailed(w, r, "partners: lookup", "could not create the partner", err)
		return
	}
	var email string
	if err := a.db.QueryRowContext(ctx, `SELECT email FROM users WHERE id = ? AND deleted_at IS NULL`, c.Subject).Scan(&email); err != nil {
		writeError(w, http.StatusUnauthorized, "account no longer exists")
		return
	}
	sc := stripeClient(a.cfg)
	params := &stripe.AccountCreateParams{
		Type: stripe.String(string(stripe.AccountTypeExpress)), Email: stripe.String(email),
		Capabilities: &stripe.AccountCreateCapabilitiesParams{Transfers: &stripe.AccountCreateCapabilitiesTransfersParams{Requested: stripe.Bool(true)}},
	}
	params.AddMetadata("user_id", c.Subject)
	params.SetIdempotencyKey("levqor-partner-account-" + c.Subject)
	acct, err := sc.V1Accounts.Create(ctx, params)
	if err != nil {
		a.log.ErrorContext(ctx, "partners: create Stripe account", "err", stripeErrorText(err))
		writeError(w, http.StatusBadGateway, "could not create the payout account; try again")
		return
	}
	link, err := a.onboardingLink(ctx, sc, acct.ID)
	if err != nil {
		a.log.ErrorContext(ctx, "partners: create onboarding link", "err", stripeErrorText(err))
		writeError(w, http.StatusBadGateway, "could not create the onboarding link; try again")
		return
	}
	// The partner's rows land only while the account is live, in one
	// transaction that locks the user row (as a login's session does), so
	// an erasure that began during the Stripe calls above leaves no row
	// of the person behind.
	code := randomHex(5)
	now := time.Now().UTC()
	err = a.db.inTx(ctx, func(t tx) error {
		res, err := t.ExecContext(ctx, `INSERT INTO partner_codes (user_id, referral_code, created_at)
			SELECT id, CAST(? AS TEXT), CAST(? AS TEXT) FROM users WHERE id = ? AND deleted_at IS NULL`+a.db.forShare(), code, now.Format(time.RFC3339), c.Subject)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAccountGone
		}
		return a.ledger.AddOnboardingPartnerTx(ctx, t.Tx, c.Subject, acct.ID, now)
	})
	switch {
	case errors.Is(err, errAccountGone):
		a.dropStripeAccount(ctx, sc, acct.ID)
		writeError(w, http.StatusUnauthorized, "account no longer exists")
		return
	case sqldialect.IsUniqueViolation(err):
		writeError(w, http.StatusConflict, "already a partner") // a concurrent request won
		return
	case err != nil:
		a.storeFailed(w, r, "partners: record", "could not create the partner", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"partner_id": c.Subject, "referral_code": code, "onboarding_url": link})
}

// dropStripeAccount deletes the Connect account made for a person whose
// account was erased while it was being made, so Stripe keeps no copy of
// their email for us. A new Express account holds no balance, which Stripe
// requires for deletion; a failure is logged, as nothing else depends on it.
func (a *app) dropStripeAccount(ctx context.Context, sc *stripe.Client, account string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if _, err := sc.V1Accounts.Delete(ctx, account, nil); err != nil {
		a.log.ErrorContext(ctx, "partners: delete the Stripe account of an erased person", "account", account, "err", stripeErrorText(err))
	}
}

// partnerOnboarding is POST /api/partners/onboarding: a new Stripe
// onboarding link for a partner whose payout account is not ready yet.
// Links work once and expire within minutes, so a partner who left the
// form, or whose link expired, needs another; POST /api/partners answers
// 409 once they are a partner.
func (a *app) partnerOnboarding(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	ctx := r.Context()
	if a.cfg.StripeKey == "" {
		writeError(w, http.StatusServiceUnavailable, "the partner programme is not configured")
		return
	}
	partner, err := a.ledger.Partner(ctx, c.Subject)
	switch {
	case errors.Is(err, payout.ErrUnknownPartner):
		writeError(w, http.StatusNotFound, "not a partner")
		return
	case err != nil:
		a.storeFailed(w, r, "partners: onboarding", "could not load the partner", err)
		return
	case partner.PayoutsEnabled:
		writeError(w, http.StatusConflict, "onboarding is complete: payouts are enabled")
		return
	}
	link, err := a.onboardingLink(ctx, stripeClient(a.cfg), partner.Account)
	if err != nil {
		a.log.ErrorContext(ctx, "partners: create onboarding link", "err", stripeErrorText(err))
		writeError(w, http.StatusBadGateway, "could not create the onboarding link; try again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"onboarding_url": link})
}

// onboardingLink creates a Stripe account link for onboarding; Stripe's
// links expire within minutes, so it is made per request, never stored.
func (a *app) onboardingLink(ctx context.Context, sc *stripe.Client, account string) (string, error) {
	link, err := sc.V1AccountLinks.Create(ctx, &stripe.AccountLinkCreateParams{
		Account:    stripe.String(account),
		RefreshURL: stripe.String(a.baseURL + onboardingRefreshPath),
		ReturnURL:  stripe.String(a.baseURL + onboardingReturnPath),
		Type:       stripe.String("account_onboarding"),
	})
	if err != nil {
		return "", err
	}
	return link.URL, nil
}

// stripeErrorText describes a Stripe failure without echoing the request
// (which could carry the key).
func stripeErrorText(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return "stripe " + strconv.Itoa(se.HTTPStatusCode) + " " + string(se.Type) + " " + string(se.Code) + ": " + se.Msg
	}
	return err.Error()
}

// partnerBalance is one currency of GET /api/partners/me.
type partnerBalance struct {
	Currency string `json:"currency"`
	Unpaid   int64  `json:"unpaid"` // may be negative after refunds
	Reserved int64  `json:"reserved"`
	Paid     int64  `json:"paid"`
}

// partnerMe is GET /api/partners/me: the caller's referral code, balance
// per currency, and a page of commissions and of payouts, newest first
// (?limit=, default 20, at most 100; ?offset=).
func (a *app) partnerMe(w http.ResponseWriter, r *http.Request) {
	c, _ := tokens.FromContext(r.Context())
	ctx := r.Context()
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	var code string
	err := a.db.QueryRowContext(ctx, `SELECT referral_code FROM partner_codes WHERE user_id = ?`, c.Subject).Scan(&code)
	if errors.Is(err, sql.ErrNoRows) {
		writeError(w, http.StatusNotFound, "not a partner")
		return
	}
	fail := func(err error) {
		a.storeFailed(w, r, "partners: me", "could not load the partner", err)
	}
	if err != nil {
		fail(err)
		return
	}
	bals, err := a.ledger.PartnerBalances(ctx, c.Subject)
	if err != nil {
		fail(err)
		return
	}
	balances := []partnerBalance{}
	for _, b := range bals {
		balances = append(balances, partnerBalance{b.Currency, b.Unpaid, b.Reserved, b.Paid})
	}
	coms, err := a.ledger.CommissionsPage(ctx, c.Subject, limit, offset)
	if err != nil {
		fail(err)
		return
	}
	pays, err := a.ledger.HistoryPage(ctx, c.Subject, limit, offset)
	if err != nil {
		fail(err)
		return
	}
	partner, err := a.ledger.Partner(ctx, c.Subject)
	if err != nil {
		fail(err)
		return
	}
	ready := partner.PayoutsEnabled
	type commission struct {
		Amount   int64     `json:"amount"`
		Currency string    `json:"currency"`
		At       time.Time `json:"at"`
		Paid     bool      `json:"paid"`
		Reversal bool      `json:"reversal,omitempty"`
	}
	type payoutRow struct {
		ID       string    `json:"id"`
		Amount   int64     `json:"amount"`
		Currency string    `json:"currency"`
		State    string    `json:"state"`
		At       time.Time `json:"created_at"`
	}
	out := struct {
		PartnerID      string           `json:"partner_id"`
		ReferralCode   string           `json:"referral_code"`
		PayoutsEnabled bool             `json:"payouts_enabled"`
		Balances       []partnerBalance `json:"balances"`
		Commissions    []commission     `json:"commissions"`
		Payouts        []payoutRow      `json:"payouts"`
		Limit          int              `json:"limit"`
		Offset         int              `json:"offset"`
	}{PartnerID: c.Subject, ReferralCode: code, PayoutsEnabled: ready, Balances: balances,
		Commissions: []commission{}, Payouts: []payoutRow{}, Limit: limit, Offset: offset}
	// Source references (invoice ids) are the referred customers' and
	// stay out of the partner's view.
	for _, cm := range coms {
		out.Commissions = append(out.Commissions, commission{cm.Amount, cm.Currency, cm.EarnedAt, cm.PayoutID != "", cm.Reverses != ""})
	}
	for _, p := range pays {
		out.Payouts = append(out.Payouts, payoutRow{p.ID, p.Amount, p.Currency, p.State, p.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// page reads ?limit= and ?offset=; false means the 400 was written.
func page(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	limit, offset = defaultPartnerPage, 0
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPartnerPage {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and "+strconv.Itoa(maxPartnerPage))
			return 0, 0, false
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			writeError(w, http.StatusBadRequest, "offset must be between 0 and 1000000")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

// recordReferral links a new user to the partner owning code, inside the
// registration's transaction. An unknown code (or none) records nothing
// and is not an error: registration must not reveal which codes exist.
// The code's row stays locked until the registration commits, so a
// partner's erasure (which deletes the code, then the referrals to the
// partner) either waits for the referral and erases it, or comes first
// and leaves no code to refer to.
func recordReferral(ctx context.Context, t tx, userID, code string, now string) error {
	if code == "" || len(code) > 64 {
		return nil
	}
	var partner string
	err := t.QueryRowContext(ctx, `SELECT user_id FROM partner_codes WHERE referral_code = ?`+t.dialect.ForShare(), code).Scan(&partner)
	if errors.Is(err, sql.ErrNoRows) || partner == userID {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = t.ExecContext(ctx, `INSERT INTO referrals (user_id, partner_id, created_at) VALUES (?, ?, ?)`, userID, partner, now)
	return err
}
