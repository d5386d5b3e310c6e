package backup_test

// Tests of what an operator must be able to trust: a path means that
// path, only regular files are read, names in the manifest stay inside
// the directory, a live database is never replaced, doctored backups are
// refused with a key, and the restore test checks the application's schema.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/sqlitetest"
)

func TestVerifyFileActsOnThePathNamed(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 50, 100)
	s := newStore(t, backup.Config{})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	// A corrupted copy elsewhere, with the same base name and its own
	// (original) sidecar: the good file in the store must not be read.
	elsewhere := filepath.Join(t.TempDir(), info.Name)
	b, _ := os.ReadFile(filepath.Join(s.Dir(), info.Name))
	b[len(b)/2] ^= 0xff
	_ = os.WriteFile(elsewhere, b, 0o600)
	side, _ := os.ReadFile(filepath.Join(s.Dir(), info.Name+".sha256"))
	_ = os.WriteFile(elsewhere+".sha256", side, 0o600)
	if _, err := s.VerifyFile(ctx, elsewhere); !errors.Is(err, backup.ErrChecksumMismatch) {
		t.Fatalf("corrupted copy elsewhere: %v, want ErrChecksumMismatch", err)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if err := s.RestoreFile(ctx, elsewhere, target, backup.RestoreOptions{}); !errors.Is(err, backup.ErrChecksumMismatch) {
		t.Fatalf("restore of the corrupted copy: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a target was written from a copy that failed verification")
	}
	if got, err := s.VerifyFile(ctx, filepath.Join(s.Dir(), info.Name)); err != nil || got.SHA256 != info.SHA256 || got.Authenticated {
		t.Fatalf("the good file: %+v, %v", got, err)
	}
}

func TestVerifyRefusesNonRegularFiles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, backup.Config{})
	dir := t.TempDir()
	link := filepath.Join(dir, "zero.db")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(link+".sha256", []byte(strings.Repeat("0", 64)+"  zero.db\n"), 0o600)
	fifo := filepath.Join(dir, "fifo.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(fifo+".sha256", []byte(strings.Repeat("0", 64)+"  fifo.db\n"), 0o600)
	for _, p := range []string{link, fifo, "/dev/zero", dir} {
		start := time.Now()
		_, err := s.VerifyFile(ctx, p)
		if !errors.Is(err, backup.ErrNotRegular) {
			t.Errorf("%s: %v, want ErrNotRegular", p, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: refused only after %v", p, d)
		}
	}
}

// A huge (sparse) backup: cancelling the context stops the verification
// promptly and leaves no scratch file.
func TestVerifyHonoursCancellation(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.db")
	f, _ := os.Create(big)
	_ = f.Truncate(50 << 30) // 50 GiB of holes: reading it takes minutes
	f.Close()
	_ = os.WriteFile(big+".sha256", []byte(strings.Repeat("0", 64)+"  big.db\n"), 0o600)
	s := newStore(t, backup.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.VerifyFile(ctx, big)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 1300*time.Millisecond {
		t.Fatalf("verification stopped %v after a 300ms deadline", d)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("files left: %v", entries)
	}
}

// The restore test writes its scratch copy beside the backup, so a small
// or missing $TMPDIR does not matter, and removes it.
func TestVerifyScratchBesideBackup(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 20, 100)
	s := newStore(t, backup.Config{})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", "/nonexistent-levqor-tmp")
	if _, err := s.Verify(ctx, info.Name); err != nil {
		t.Fatalf("verify with an unusable $TMPDIR: %v", err)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".verify-") {
			t.Fatalf("scratch file left: %s", e.Name())
		}
	}
	// A scratch directory that cannot hold the copy: the error says where
	// and how much (the directory does not exist here).
	s2 := newStore(t, backup.Config{Dir: s.Dir(), ScratchDir: "/nonexistent-levqor-scratch"})
	if _, err := s2.Verify(ctx, info.Name); err == nil || !strings.Contains(err.Error(), "/nonexistent-levqor-scratch") {
		t.Fatalf("err %v", err)
	}
}

func TestPruneRefusesPathsInManifest(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "backups")
	s := newStore(t, backup.Config{Dir: dir, Now: func() time.Time { return t0 }})
	db, _ := liveDB(t, 5, 10)
	if _, err := s.Backup(ctx, db); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "a", "x")
	_ = os.WriteFile(victim, []byte("precious"), 0o600)
	m, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	evil := strings.Replace(string(m), "[", `[{"name":"../../x","time":"2020-01-01T00:00:00Z","size":8,"sha256":"00"},{"name":"/etc/passwd","time":"2020-01-02T00:00:00Z"},`, 1)
	_ = os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(evil), 0o600)
	_, err := s.Prune(ctx, backup.Policy{KeepLast: 1})
	if !errors.Is(err, backup.ErrBadName) || !strings.Contains(err.Error(), "../../x") {
		t.Fatalf("prune err %v, want ErrBadName naming the entry", err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Fatal("prune deleted a file outside the backup directory")
	}
	if _, err := s.Verify(ctx, "../../x"); !errors.Is(err, backup.ErrBadName) {
		t.Fatalf("verify by a path-like name: %v", err)
	}
}

func TestRestoreRefusesDatabaseInUse(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 30, 10)
	s := newStore(t, backup.Config{})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "app.db")
	live := sqlitetest.Open(t, target) // WAL, like the server
	if _, err := live.Exec("CREATE TABLE written_after (x)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{Overwrite: true}); !errors.Is(err, backup.ErrInUse) {
		t.Fatalf("--force over an open database: %v, want ErrInUse", err)
	}
	if _, err := live.Exec("INSERT INTO written_after VALUES (1)"); err != nil {
		t.Fatalf("the live database was disturbed: %v", err)
	}
	live.Close()

	// A lock file held (shared) by a running server also refuses.
	lock := target + ".lock"
	f, _ := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{Overwrite: true, LockFile: lock}); !errors.Is(err, backup.ErrInUse) {
		t.Fatalf("with the lock held: %v", err)
	}
	f.Close()
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{Overwrite: true, LockFile: lock}); err != nil {
		t.Fatalf("nothing uses it any more: %v", err)
	}
}

func TestKeyedBackupsRefuseTampering(t *testing.T) {
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	db, _ := liveDB(t, 10, 10)
	s := newStore(t, backup.Config{Key: key})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(ctx, info.Name)
	if err != nil || !got.Authenticated {
		t.Fatalf("genuine backup: %+v %v", got, err)
	}
	path := filepath.Join(s.Dir(), info.Name)
	// Doctor it (a trigger), recompute the sha256 sidecar: it still passes
	// the checksum, but not the tag.
	doctored := filepath.Join(t.TempDir(), info.Name)
	b, _ := os.ReadFile(path)
	_ = os.WriteFile(doctored, b, 0o600)
	d := sqlitetest.Open(t, doctored)
	if _, err := d.Exec("CREATE TRIGGER steal AFTER INSERT ON a BEGIN SELECT 1; END"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	resign(t, filepath.Dir(doctored), info.Name)
	hm, _ := os.ReadFile(path + ".hmac")
	_ = os.WriteFile(doctored+".hmac", hm, 0o600)
	if _, err := s.VerifyFile(ctx, doctored); !errors.Is(err, backup.ErrUnauthenticated) {
		t.Fatalf("doctored backup with recomputed checksum: %v, want ErrUnauthenticated", err)
	}
	target := filepath.Join(t.TempDir(), "app.db")
	if err := s.RestoreFile(ctx, doctored, target, backup.RestoreOptions{}); !errors.Is(err, backup.ErrUnauthenticated) {
		t.Fatalf("restore of the doctored backup: %v", err)
	}
	// A missing tag, and a tag made with another key.
	_ = os.Remove(doctored + ".hmac")
	if _, err := s.VerifyFile(ctx, doctored); !errors.Is(err, backup.ErrUnauthenticated) {
		t.Fatalf("no tag: %v", err)
	}
	other := newStore(t, backup.Config{Key: []byte("another key, also 32 bytes long!")})
	if _, err := other.VerifyFile(ctx, path); !errors.Is(err, backup.ErrUnauthenticated) {
		t.Fatalf("other key: %v", err)
	}
	// Without a key the same doctored file passes, unauthenticated: the
	// caller must say so.
	if got, err := newStore(t, backup.Config{}).VerifyFile(ctx, doctored); err != nil || got.Authenticated {
		t.Fatalf("no key: %+v %v", got, err)
	}
	if _, err := backup.New(backup.Config{Dir: t.TempDir(), Key: []byte("short")}); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestCheckRejectsOtherApplications(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 5, 10) // tables a and b
	s := newStore(t, backup.Config{Check: backup.RequireTables("a", "b")})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, info.Name); err != nil {
		t.Fatal(err)
	}
	strict := newStore(t, backup.Config{Dir: s.Dir(), Check: backup.RequireTables("a", "users", "sessions")})
	_, err = strict.Verify(ctx, info.Name)
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "users, sessions") {
		t.Fatalf("a database without the expected tables: %v", err)
	}
}

// TestNoDriverSideEffect: importing backup does not import (and so
// register) an SQL driver; the program imports its own.
func TestNoDriverSideEffect(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	if strings.Contains(string(out), "modernc.org/sqlite") {
		t.Fatal("package backup depends on modernc.org/sqlite: importing it registers a driver")
	}
}

// TestRestoreRefusesTheBackupItself: restoring a backup onto itself (the
// same path, a hard link or a symlink to it) or onto a directory is
// refused before anything is touched. It used to pass the in-use check,
// which switched the "target" out of WAL mode and so rewrote the backup:
// it then failed its own checksum for good.
func TestRestoreRefusesTheBackupItself(t *testing.T) {
	ctx := context.Background()
	s, path := oneBackup(t, backup.Config{}, 30, 10)
	other := t.TempDir()
	hard, soft := filepath.Join(other, "hard.db"), filepath.Join(other, "soft.db")
	if err := os.Link(path, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, soft); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{path, hard, soft} {
		err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{Overwrite: true, LockFile: target + ".lock"})
		if !errors.Is(err, backup.ErrTargetIsBackup) {
			t.Fatalf("restore onto %s: %v, want ErrTargetIsBackup", target, err)
		}
		if _, err := os.Stat(target + ".lock"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused restore left %s.lock", target)
		}
	}
	if _, err := s.VerifyFile(ctx, path); err != nil {
		t.Fatalf("the backup no longer verifies: %v", err)
	}
	dir := filepath.Join(other, "dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreFile(ctx, path, dir, backup.RestoreOptions{Overwrite: true}); !errors.Is(err, backup.ErrTargetIsDir) {
		t.Fatalf("restore onto a directory: %v, want ErrTargetIsDir", err)
	}
}

// TestFailedRestoreLeavesTargetAlone: a backup that fails verification is
// refused before the target is looked at as a database, so an existing
// database (WAL, not in use) keeps every byte.
func TestFailedRestoreLeavesTargetAlone(t *testing.T) {
	ctx := context.Background()
	s, path := oneBackup(t, backup.Config{}, 30, 10)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, 5000); err != nil { // damage the backup
		t.Fatal(err)
	}
	f.Close()
	target := filepath.Join(t.TempDir(), "app.db")
	live := sqlitetest.Open(t, target) // WAL, like the server
	if _, err := live.Exec("CREATE TABLE kept (x)"); err != nil {
		t.Fatal(err)
	}
	live.Close()
	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreFile(ctx, path, target, backup.RestoreOptions{Overwrite: true}); !errors.Is(err, backup.ErrChecksumMismatch) {
		t.Fatalf("restore of a damaged backup: %v, want ErrChecksumMismatch", err)
	}
	after, err := os.ReadFile(target)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the target changed under a refused restore (err %v)", err)
	}
}
