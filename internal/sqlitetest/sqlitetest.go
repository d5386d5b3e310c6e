// Package sqlitetest opens real SQLite database files for tests.
package sqlitetest

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DSN returns a modernc.org/sqlite data source name for path with the
// settings every Levqor test uses: WAL and a busy timeout, so concurrent
// writers wait instead of failing with SQLITE_BUSY.
func DSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
}

// Path returns a fresh database path inside t.TempDir().
func Path(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "test.db")
}

// Open opens (creating it) the SQLite database at path and closes it when the test ends.
func Open(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		t.Fatalf("sqlitetest: open %s: %v", path, err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("sqlitetest: ping %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
