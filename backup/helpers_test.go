package backup_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/sqlitetest"
)

var t0 = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// liveDB makes a WAL database with tables a and b, rows rows each with
// payload bytes of random data.
func liveDB(t testing.TB, rows, payload int) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "live.db")
	db := sqlitetest.Open(t, path)
	for _, q := range []string{
		"CREATE TABLE a (id INTEGER PRIMARY KEY, data BLOB)",
		"CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, payload)
	for range rows {
		_, _ = rand.Read(buf)
		res, err := tx.Exec("INSERT INTO a (data) VALUES (?)", buf)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := tx.Exec("INSERT INTO b (a_id) VALUES (?)", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// oneBackup backs up a fresh live database (rows rows of payload bytes)
// into a new store, returning the store and the backup's path.
func oneBackup(t testing.TB, cfg backup.Config, rows, payload int) (*backup.Store, string) {
	t.Helper()
	db, _ := liveDB(t, rows, payload)
	s := newStore(t, cfg)
	info, err := s.Backup(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s, filepath.Join(s.Dir(), info.Name)
}

func newStore(t testing.TB, cfg backup.Config) *backup.Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "backups")
	}
	s, err := backup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func counts(t testing.TB, path string) (a, b int) {
	t.Helper()
	db := sqlitetest.Open(t, path)
	defer db.Close()
	if err := db.QueryRowContext(context.Background(), "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)").Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	return a, b
}
