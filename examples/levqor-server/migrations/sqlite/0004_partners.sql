-- The partner programme. A partner's id in the payout ledger
-- (levqor_partners, levqor_commissions) is its user id.
CREATE TABLE partner_codes (
	user_id TEXT PRIMARY KEY,
	referral_code TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);
-- Who referred whom: one partner per referred user, set at registration.
CREATE TABLE referrals (
	user_id TEXT PRIMARY KEY,
	partner_id TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX referrals_partner ON referrals (partner_id);
-- Invoices of referred users that earned a commission, to find the
-- commission a refund takes back (a charge names its customer and
-- payment intent, not its invoice).
CREATE TABLE referral_invoices (
	invoice_id TEXT PRIMARY KEY,
	partner_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	customer TEXT NOT NULL,
	payment_intent TEXT NOT NULL,
	amount_paid BIGINT NOT NULL,
	currency TEXT NOT NULL,
	commission BIGINT NOT NULL,
	paid_at TEXT NOT NULL
);
CREATE INDEX referral_invoices_customer ON referral_invoices (customer);
-- Stripe events already handled (a redelivered event does nothing).
CREATE TABLE stripe_events (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	received_at TEXT NOT NULL
);
