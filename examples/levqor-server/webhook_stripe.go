package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/payout"
)

// Stripe webhook limits. Most events are a few KiB, but an object's
// metadata may hold 50 values of 500 characters, and an invoice event
// carries its lines, each with metadata of its own: a legitimate
// invoice.paid can pass 100 KiB, and a refused one is retried by Stripe
// for three days and then lost. Bodies are read up to webhookBodyFree by
// any number of requests at once; a larger one needs one of
// webhookLargeSlots, so the memory unsigned bodies can hold is bounded:
// webhookBodyFree per connection plus maxWebhookBody per slot.
const (
	// maxWebhookBody caps a Stripe event body.
	maxWebhookBody = 1 << 20
	// webhookBodyFree is how much of a body is read without a slot.
	webhookBodyFree = 64 << 10
	// webhookLargeSlots is how many bodies over webhookBodyFree are read
	// at once; others get 503 (Stripe delivers them again later).
	webhookLargeSlots = 4
	// webhookLargeReadTime is how long the rest of a large body may take
	// once it holds a slot (a MiB at 100 KiB/s): a client trickling its
	// body would otherwise hold the slot for the whole read timeout (30 s),
	// and all four with four connections.
	webhookLargeReadTime = 10 * time.Second
	// webhookTolerance is how old a signature may be (Stripe's default).
	webhookTolerance = 300 * time.Second
)

// stripeWebhook is POST /webhooks/stripe. The event is verified by
// stripe-go's webhook package (Stripe-Signature: the timestamp and every
// v1 HMAC-SHA256 signature, so a secret being rolled works; 300 s
// tolerance). Bad signatures and stale timestamps get 400 and change
// nothing; anyone can send them, so they are logged at most once per
// clientLogInterval (the metric counts each). Event types it does not
// handle get 200. Every handler is
// idempotent per Stripe object, and handled event ids are recorded, so a
// redelivered or duplicated event records nothing new. A failure to
// record answers 500, and Stripe delivers the event again.
func (a *app) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if len(a.cfg.StripeWebhookSecrets) == 0 {
		writeError(w, http.StatusServiceUnavailable, "Stripe webhooks are not configured")
		return
	}
	body, release, err := a.readWebhookBody(w, r)
	defer release()
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "event body over 1 MiB")
		case errors.Is(err, errWebhookBusy):
			// Answered at once: net/http would otherwise first read what
			// is left of the body, for as long as the client takes.
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusServiceUnavailable, "too many large events at once; retry later")
		default:
			writeError(w, http.StatusBadRequest, "could not read the event")
		}
		return
	}
	// Each endpoint signs with its own secret: the account endpoint's
	// (invoice.paid, charge.refunded) and the Connect endpoint's (a
	// partner's account.updated, which Stripe sends only there).
	var ev stripe.Event
	for _, secret := range a.cfg.StripeWebhookSecrets {
		if ev, err = webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
			webhook.ConstructEventOptions{Tolerance: webhookTolerance, IgnoreAPIVersionMismatch: true}); !errors.Is(err, webhook.ErrNoValidSignature) {
			break
		}
	}
	if err != nil {
		a.metrics.webhookEvents.WithLabelValues("rejected").Inc()
		a.webhookLog.Log(ctx, slog.LevelWarn, "stripe webhook: rejected", "reason", webhookRejection(err))
		writeError(w, http.StatusBadRequest, "invalid signature")
		return
	}
	if ev.ID == "" || len(ev.ID) > 255 {
		writeError(w, http.StatusBadRequest, "event without an id")
		return
	}
	var seen int
	switch err := a.db.QueryRowContext(ctx, `SELECT 1 FROM stripe_events WHERE id = ?`, ev.ID).Scan(&seen); {
	case err == nil:
		a.metrics.webhookEvents.WithLabelValues("duplicate").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
		return
	case !errors.Is(err, sql.ErrNoRows):
		a.webhookFailed(w, r, ev, err)
		return
	}
	var handle func(context.Context, stripe.Event) error
	switch ev.Type {
	case "invoice.paid":
		handle = a.invoicePaid
	case "charge.refunded":
		handle = a.chargeRefunded
	case "account.updated":
		handle = a.accountUpdated
	default:
		a.metrics.webhookEvents.WithLabelValues("ignored").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
		return
	}
	if err := handle(ctx, ev); err != nil {
		a.webhookFailed(w, r, ev, err)
		return
	}
	if _, err := a.db.ExecContext(ctx, `INSERT INTO stripe_events (id, type, received_at) VALUES (?, ?, ?)`,
		ev.ID, string(ev.Type), time.Now().UTC().Format(time.RFC3339)); err != nil && !sqldialect.IsUniqueViolation(err) {
		a.webhookFailed(w, r, ev, err)
		return
	}
	a.metrics.webhookEvents.WithLabelValues("handled").Inc()
	writeJSON(w, http.StatusOK, map[string]string{"status": "handled"})
}

// errWebhookBusy: every slot for large event bodies is taken.
var errWebhookBusy = errors.New("every slot for large event bodies is taken")

// readWebhookBody reads an event body of at most maxWebhookBody bytes,
// taking one of the large-body slots for a body over webhookBodyFree; the
// caller calls release once done with the body.
func (a *app) readWebhookBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	release = func() {}
	in := http.MaxBytesReader(w, r.Body, maxWebhookBody)
	if body, err = io.ReadAll(io.LimitReader(in, webhookBodyFree+1)); err != nil || len(body) <= webhookBodyFree {
		return body, release, err
	}
	select {
	case a.webhookSlots <- struct{}{}:
		release = func() { <-a.webhookSlots }
	default:
		return nil, release, errWebhookBusy
	}
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.webhookReadTime)); err != nil {
		return nil, release, err
	}
	rest, err := io.ReadAll(in)
	return append(body, rest...), release, err
}

func (a *app) webhookFailed(w http.ResponseWriter, r *http.Request, ev stripe.Event, err error) {
	a.metrics.webhookEvents.WithLabelValues("failed").Inc()
	a.log.ErrorContext(r.Context(), "stripe webhook: not recorded; Stripe will retry", "event", ev.ID, "type", string(ev.Type), "err", err)
	writeError(w, http.StatusInternalServerError, "event not recorded; retry")
}

// webhookRejection names why a signature was refused, for the log (the
// header and body are not logged).
func webhookRejection(err error) string {
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return "timestamp outside the tolerance"
	case errors.Is(err, webhook.ErrNoValidSignature):
		return "no valid v1 signature"
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader):
		return "missing or malformed Stripe-Signature"
	}
	return "invalid payload"
}

// invoicePaid records the commission on an invoice paid by a referred
// user (found by the invoice's metadata.user_id, else its customer
// email), once per invoice.
func (a *app) invoicePaid(ctx context.Context, ev stripe.Event) error {
	var inv stripe.Invoice
	if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
		return nil // not an invoice: nothing to record, and a retry would not help
	}
	if inv.ID == "" || inv.AmountPaid <= 0 || inv.Currency == "" {
		return nil
	}
	user, ok, err := a.invoiceUser(ctx, &inv)
	if err != nil || !ok {
		return err
	}
	var partner string
	err = a.db.QueryRowContext(ctx, `SELECT partner_id FROM referrals WHERE user_id = ?`, user).Scan(&partner)
	if errors.Is(err, sql.ErrNoRows) || partner == user {
		return nil // not referred; a partner never earns on their own invoices
	}
	if err != nil {
		return err
	}
	commission := payout.Commission(inv.AmountPaid, payout.DefaultCommissionBasisPoints)
	if commission <= 0 {
		return nil
	}
	at := time.Unix(ev.Created, 0)
	if _, err := a.ledger.Accrue(ctx, partner, invoiceRef(inv.ID), commission, string(inv.Currency), at); err != nil {
		if errors.Is(err, payout.ErrUnknownPartner) {
			return nil // the partner's account was erased
		}
		return err
	}
	customer, intent := "", ""
	if inv.Customer != nil {
		customer = inv.Customer.ID
	}
	if inv.Payments != nil {
		for _, p := range inv.Payments.Data {
			if p.Payment != nil && p.Payment.PaymentIntent != nil {
				intent = p.Payment.PaymentIntent.ID
			}
		}
	}
	// Written only while the referral stands, its row locked until the
	// insert commits: an erasure of either person deletes the referral
	// before it pseudonymises their invoices, so it either waits and
	// pseudonymises this one too, or comes first and nothing is written.
	_, err = a.db.ExecContext(ctx, `INSERT INTO referral_invoices (invoice_id, partner_id, user_id, customer, payment_intent, amount_paid, currency, commission, paid_at)
		SELECT CAST(? AS TEXT), partner_id, user_id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT)
		FROM referrals WHERE user_id = ? AND partner_id = ?`+a.db.forShare()+` ON CONFLICT (invoice_id) DO NOTHING`,
		inv.ID, customer, intent, inv.AmountPaid, string(inv.Currency), commission, at.UTC().Format(time.RFC3339), user, partner)
	return err
}

func invoiceRef(id string) string { return "stripe:" + id }

// invoiceUser finds the live account an invoice belongs to.
func (a *app) invoiceUser(ctx context.Context, inv *stripe.Invoice) (string, bool, error) {
	var id string
	if uid := inv.Metadata["user_id"]; uid != "" {
		err := a.db.QueryRowContext(ctx, `SELECT id FROM users WHERE id = ? AND deleted_at IS NULL`, uid).Scan(&id)
		if err == nil {
			return id, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", false, err
		}
	}
	email, err := normaliseEmail(inv.CustomerEmail)
	if err != nil {
		return "", false, nil
	}
	err = a.db.QueryRowContext(ctx, `SELECT id FROM users WHERE email = ? AND deleted_at IS NULL`, email).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// chargeRefunded takes back the commission on a refunded charge of a
// referred user, in proportion to the amount refunded so far. The charge
// is matched to its commissioned invoice by payment intent, else by
// customer, currency and amount (newest first).
func (a *app) chargeRefunded(ctx context.Context, ev stripe.Event) error {
	var ch stripe.Charge
	if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil || ch.ID == "" || ch.AmountRefunded <= 0 {
		return nil
	}
	customer, intent := "", ""
	if ch.Customer != nil {
		customer = ch.Customer.ID
	}
	if ch.PaymentIntent != nil {
		intent = ch.PaymentIntent.ID
	}
	if customer == "" && intent == "" {
		return nil
	}
	var invoice string
	var paid, commission int64
	err := a.db.QueryRowContext(ctx, `SELECT invoice_id, amount_paid, commission FROM referral_invoices
		WHERE (payment_intent <> '' AND payment_intent = ?)
		   OR (customer <> '' AND customer = ? AND currency = ? AND amount_paid = ?)
		ORDER BY CASE WHEN payment_intent = ? THEN 0 ELSE 1 END, paid_at DESC LIMIT 1`,
		intent, customer, string(ch.Currency), ch.Amount, intent).Scan(&invoice, &paid, &commission)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // no commission was earned on it
	}
	if err != nil {
		return err
	}
	refunded := min(ch.AmountRefunded, paid)
	total := (commission*refunded + paid/2) / paid // rounded half up
	ref := "refund:" + ch.ID + ":" + strconv.FormatInt(refunded, 10)
	_, err = a.ledger.Reverse(ctx, invoiceRef(invoice), ref, total, time.Unix(ev.Created, 0))
	if errors.Is(err, payout.ErrNotFound) {
		return nil
	}
	return err
}

// accountUpdated records whether a partner's Connect account can receive
// transfers; an event older than the last one applied changes nothing.
func (a *app) accountUpdated(ctx context.Context, ev stripe.Event) error {
	var acct stripe.Account
	if err := json.Unmarshal(ev.Data.Raw, &acct); err != nil || acct.ID == "" {
		return nil
	}
	err := a.ledger.SetPayoutsEnabled(ctx, acct.ID, acct.PayoutsEnabled, time.Unix(ev.Created, 0))
	if errors.Is(err, payout.ErrUnknownPartner) {
		return nil // not one of our partners
	}
	return err
}
