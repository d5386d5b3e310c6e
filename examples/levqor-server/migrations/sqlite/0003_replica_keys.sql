-- Fingerprints (never the secrets) of the keys every replica on this
-- database must share: see agreeOnKeys.
CREATE TABLE replica_keys (
	name TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL
);
