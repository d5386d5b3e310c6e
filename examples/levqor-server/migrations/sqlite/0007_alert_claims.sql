-- Alerts raised by several replicas at once (an SLO burning on each, a
-- latency spike, housekeeping failing against the shared database) are
-- delivered once between them: the replica that claims an alert's key
-- delivers it, the others hold it back until the claim ends. Used when
-- replicas share PostgreSQL and no Redis (with Redis the claims live
-- there). until_ms is the claim's end, Unix milliseconds.
CREATE TABLE alert_claims (
    alert_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
