-- Set when account deletion starts: from then on no login, session or
-- audit row can be created for the user (see deleteUser).
ALTER TABLE users ADD COLUMN deleted_at TEXT;
