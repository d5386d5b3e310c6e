package backup_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/pgtest"
)

// TestPostgresBackup: pg_dump under the same sidecar, tag, manifest,
// retention and verify-by-restore contract as SQLite; the restore test
// checks the schema in a scratch database; restore loads into a named
// database and refuses one in use.
func TestPostgresBackup(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT UNIQUE)`,
		`INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 500) g`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	pg, err := backup.NewPostgres(backup.PostgresConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	s := newStore(t, backup.Config{Postgres: pg, Key: key, Check: backup.RequireTables("users")})
	info, err := s.BackupSource(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.Name, ".dump") || info.Size == 0 {
		t.Fatalf("%+v", info)
	}
	got, err := s.Verify(ctx, info.Name)
	if err != nil || !got.Authenticated {
		t.Fatalf("verify: %+v %v", got, err)
	}
	// The schema check runs in the scratch database.
	strict := newStore(t, backup.Config{Dir: s.Dir(), Postgres: pg, Key: key, Check: backup.RequireTables("users", "sessions")})
	if _, err := strict.Verify(ctx, info.Name); !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "sessions") {
		t.Fatalf("missing table: %v", err)
	}
	// Tampering is refused by the tag, corruption by the checksum.
	path := filepath.Join(s.Dir(), info.Name)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), info.Name)
	_ = os.WriteFile(bad, b, 0o600)
	side, _ := os.ReadFile(path + ".sha256")
	_ = os.WriteFile(bad+".sha256", side, 0o600)
	if _, err := s.VerifyFile(ctx, bad); !errors.Is(err, backup.ErrChecksumMismatch) {
		t.Fatalf("corrupted dump: %v", err)
	}
	// Restore into a new database, then refuse to replace it while in use.
	// The target is named after this test's database: the PostgreSQL
	// server outlives one run of the test (go test -count).
	target := lastPath(url) + "_restored"
	if err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	restored, _ := sql.Open("pgx", strings.Replace(url, "/"+lastPath(url), "/"+target, 1))
	defer restored.Close()
	var n int
	if err := restored.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n != 500 {
		t.Fatalf("restored %d users: %v", n, err)
	}
	if err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{}); !errors.Is(err, backup.ErrTargetExists) {
		t.Fatalf("existing target: %v", err)
	}
	if err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{Overwrite: true}); !errors.Is(err, backup.ErrInUse) {
		t.Fatalf("target in use: %v", err)
	}
	restored.Close()
	if err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{Overwrite: true}); err != nil {
		t.Fatalf("overwrite once unused: %v", err)
	}
	if err := s.RestoreFile(ctx, path, "bad name; drop", backup.RestoreOptions{}); err == nil {
		t.Fatal("an unsafe database name was accepted")
	}
	// A Store without Config.Postgres cannot verify a dump, and says so.
	plain := newStore(t, backup.Config{Dir: s.Dir()})
	if _, err := plain.VerifyFile(ctx, path); err == nil || !strings.Contains(err.Error(), "Config.Postgres") {
		t.Fatalf("dump without Postgres config: %v", err)
	}
	// Retention applies as for SQLite backups.
	if _, err := s.Prune(ctx, backup.Policy{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
}

func lastPath(u string) string { return u[strings.LastIndex(u, "/")+1 : strings.Index(u+"?", "?")] }

// TestPostgresErrorsHideThePassword: a wrong password in the URL never
// appears in the error.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	url := pgtest.NewDatabase(t)
	bad := strings.Replace(url, "levqor@", "levqor:s3cret-pw@", 1)
	bad = strings.Replace(bad, "127.0.0.1:", "127.0.0.1:1", 1) // an unreachable port
	pg, err := backup.NewPostgres(backup.PostgresConfig{URL: bad})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, backup.Config{Postgres: pg})
	_, err = s.BackupSource(context.Background(), pg)
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("err %v", err)
	}
}
