-- The server's tables (the library packages create their own).
CREATE TABLE IF NOT EXISTS users (
	id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
	family_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TEXT NOT NULL, user_agent TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS audit_log (
	id BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_id);
