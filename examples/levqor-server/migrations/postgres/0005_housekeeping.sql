-- When housekeeping next asks the token store whether a session's refresh
-- family can still be used; a session whose family is revoked or gone is
-- deleted then. '' (sessions recorded before this migration): at the next
-- run.
ALTER TABLE sessions ADD COLUMN check_after TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_check_after ON sessions (check_after);
-- Housekeeping forgets handled Stripe events after stripeEventsKept.
CREATE INDEX stripe_events_received_at ON stripe_events (received_at);
-- Housekeeping deletes security-log rows older than LEVQOR_AUDIT_RETENTION.
CREATE INDEX audit_log_at ON audit_log (at);
