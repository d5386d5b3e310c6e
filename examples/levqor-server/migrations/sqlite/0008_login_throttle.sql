-- The per-account login throttle, shared by replicas that share
-- PostgreSQL and no Redis (with Redis it lives there; the embedded SQLite
-- has one server, which keeps it in memory). One row per account key (a
-- hash of the email, never the address): the attempts counted in the
-- window and when the window ends, Unix milliseconds. Ended windows are
-- deleted by the attempts of each replica once a minute, and by
-- housekeeping.
CREATE TABLE login_throttle (
    account_key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    window_ends BIGINT NOT NULL
);
CREATE INDEX login_throttle_window_ends ON login_throttle (window_ends);
