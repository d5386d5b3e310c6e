package payout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v85"
)

// Transfer is one payment to a partner's connected account.
type Transfer struct {
	PayoutID    string // also the idempotency key
	Destination string // e.g. a Stripe connected account "acct_..."
	Amount      int64  // minor units
	Currency    string // ISO 4217, upper case
	Description string
}

// Payouter moves money to partners.
type Payouter interface {
	// Pay makes the transfer; calling it again with the same PayoutID must
	// not pay twice. It returns the provider's transfer id.
	Pay(ctx context.Context, t Transfer) (transferID string, err error)
	// Find looks for a transfer already made for payoutID (after a crash,
	// or once the provider forgot the idempotency key).
	Find(ctx context.Context, payoutID string) (transferID string, found bool, err error)
}

// Error is a Payouter failure, classified.
type Error struct {
	// Retryable is true for failures that may succeed later (rate limits,
	// 5xx, network); false for ones that will not (invalid account,
	// insufficient funds, bad request).
	Retryable bool
	Code      string
	Err       error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	if e.Code != "" {
		return fmt.Sprintf("payout: %s failure (%s): %v", kind, e.Code, e.Err)
	}
	return fmt.Sprintf("payout: %s failure: %v", kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying. Errors that are not
// an *Error (network failures, timeouts) are retryable: the transfer's
// fate is unknown, and the idempotency key makes a retry safe.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return err != nil
}

// StripeTransfersConfig configures StripeTransfers.
type StripeTransfersConfig struct {
	// Client is built with stripe.NewClient (tests point its backend at an
	// httptest.Server). Required.
	Client *stripe.Client
}

// StripeTransfers pays through Stripe Connect transfers from the
// platform's balance.
type StripeTransfers struct {
	client *stripe.Client
}

var (
	_ Payouter = (*StripeTransfers)(nil)
	_ error    = (*Error)(nil)
)

// NewStripeTransfers validates cfg.
func NewStripeTransfers(cfg StripeTransfersConfig) (*StripeTransfers, error) {
	if cfg.Client == nil {
		return nil, errors.New("payout: StripeTransfersConfig.Client is required")
	}
	return &StripeTransfers{client: cfg.Client}, nil
}

// idempotencyPrefix namespaces keys so they never collide with the
// application's other Stripe calls.
const idempotencyPrefix = "levqor-payout-"

// Pay implements Payouter with POST /v1/transfers.
func (s *StripeTransfers) Pay(ctx context.Context, t Transfer) (string, error) {
	params := &stripe.TransferCreateParams{
		Amount:        stripe.Int64(t.Amount),
		Currency:      stripe.String(strings.ToLower(t.Currency)),
		Destination:   stripe.String(t.Destination),
		TransferGroup: stripe.String(t.PayoutID),
		Description:   stripe.String(t.Description),
	}
	params.AddMetadata("payout_id", t.PayoutID)
	params.SetIdempotencyKey(idempotencyPrefix + t.PayoutID)
	tr, err := s.client.V1Transfers.Create(ctx, params)
	if err != nil {
		return "", classifyStripe(err)
	}
	return tr.ID, nil
}

// Find implements Payouter by listing transfers in the payout's transfer group.
func (s *StripeTransfers) Find(ctx context.Context, payoutID string) (string, bool, error) {
	params := &stripe.TransferListParams{TransferGroup: stripe.String(payoutID)}
	params.Limit = stripe.Int64(1)
	for tr, err := range s.client.V1Transfers.List(ctx, params).All(ctx) {
		if err != nil {
			return "", false, classifyStripe(err)
		}
		return tr.ID, true, nil
	}
	return "", false, nil
}

func classifyStripe(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &Error{Retryable: true, Err: err}
	}
	code := string(se.Code)
	switch {
	case se.HTTPStatusCode == http.StatusTooManyRequests,
		se.HTTPStatusCode == http.StatusConflict, // concurrent request with the same key
		se.HTTPStatusCode >= 500,
		se.Type == stripe.ErrorTypeAPI:
		return &Error{Retryable: true, Code: code, Err: fmt.Errorf("stripe %d: %s", se.HTTPStatusCode, se.Msg)}
	}
	return &Error{Retryable: false, Code: code, Err: fmt.Errorf("stripe %d: %s", se.HTTPStatusCode, se.Msg)}
}
