package backup_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
)

// TestBackupUnderConcurrentWrites: a writer keeps inserting a row into a
// and its partner into b in one transaction while backups run; every backup
// must verify and hold equal counts (a transaction-consistent snapshot).
func TestBackupUnderConcurrentWrites(t *testing.T) {
	db, _ := liveDB(t, 2000, 512)
	ctx := context.Background()
	clk := testclock.New(t0)
	var progressCalls atomic.Int64
	stepped := newStore(t, backup.Config{Now: clk.Now, StepPages: 16, Progress: func(copied, total int) {
		progressCalls.Add(1)
		if copied > total || total == 0 {
			t.Errorf("progress %d/%d", copied, total)
		}
	}})
	whole := newStore(t, backup.Config{Now: clk.Now})

	stop := make(chan struct{})
	var wrote atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 512)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := db.Begin()
			if err != nil {
				t.Error(err)
				return
			}
			res, _ := tx.Exec("INSERT INTO a (data) VALUES (?)", buf)
			id, _ := res.LastInsertId()
			_, _ = tx.Exec("INSERT INTO b (a_id) VALUES (?)", id)
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			wrote.Add(1)
		}
	})
	for i := range 6 {
		s := whole
		if i%2 == 1 {
			s = stepped
		}
		for wrote.Load() < int64(20*(i+1)) {
			time.Sleep(time.Millisecond) // let the writer make progress between backups
		}
		info, err := s.Backup(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if _, err := s.Verify(ctx, info.Name); err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		a, b := counts(t, filepath.Join(s.Dir(), info.Name))
		if a != b || a < 2000 {
			t.Fatalf("backup %d: a=%d b=%d: not a consistent snapshot", i, a, b)
		}
	}
	close(stop)
	wg.Wait()
	if progressCalls.Load() == 0 {
		t.Fatal("Progress never called")
	}
}

func TestSidecarVerifiesWithSha256sum(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Fatal("sha256sum (coreutils) not installed")
	}
	db, _ := liveDB(t, 100, 100)
	s := newStore(t, backup.Config{})
	info, err := s.Backup(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum", "-c", info.Name+".sha256")
	cmd.Dir = s.Dir()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), info.Name+": OK") {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	// And it catches a change.
	f, _ := os.OpenFile(filepath.Join(s.Dir(), info.Name), os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write([]byte{0})
	f.Close()
	if err := cmd2(s.Dir(), info.Name).Run(); err == nil {
		t.Fatal("sha256sum -c accepted a modified backup")
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), info.Name)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v, want 0600", fi.Mode().Perm())
	}
}

func cmd2(dir, name string) *exec.Cmd {
	c := exec.Command("sha256sum", "--quiet", "-c", name+".sha256")
	c.Dir = dir
	return c
}

func TestVerifyDetectsDamage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, info backup.Info)
		want   error
	}{
		{"flipped byte", func(t *testing.T, dir string, info backup.Info) {
			flip(t, filepath.Join(dir, info.Name), info.Size/2)
		}, backup.ErrChecksumMismatch},
		{"truncated", func(t *testing.T, dir string, info backup.Info) {
			if err := os.Truncate(filepath.Join(dir, info.Name), info.Size/3); err != nil {
				t.Fatal(err)
			}
		}, backup.ErrChecksumMismatch},
		{"sidecar missing", func(t *testing.T, dir string, info backup.Info) {
			_ = os.Remove(filepath.Join(dir, info.Name+".sha256"))
		}, backup.ErrMissingChecksum},
		{"corrupt pages with a matching checksum", func(t *testing.T, dir string, info backup.Info) {
			p := filepath.Join(dir, info.Name)
			b, _ := os.ReadFile(p)
			for i := 4096 + 100; i < 4096*4; i++ { // scribble over b-tree pages
				b[i] = 0xA5
			}
			_ = os.WriteFile(p, b, 0o600)
			resign(t, dir, info.Name)
		}, backup.ErrCorrupt},
		{"not SQLite at all", func(t *testing.T, dir string, info backup.Info) {
			_ = os.WriteFile(filepath.Join(dir, info.Name), []byte("hello"), 0o600)
			resign(t, dir, info.Name)
		}, backup.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := liveDB(t, 300, 200)
			s := newStore(t, backup.Config{})
			info, err := s.Backup(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, s.Dir(), info)
			if _, err := s.Verify(ctx, info.Name); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			target := filepath.Join(t.TempDir(), "restored.db")
			if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{}); !errors.Is(err, tc.want) {
				t.Fatalf("Restore = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a damaged backup was restored")
			}
		})
	}
}

func flip(t *testing.T, path string, at int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	_, _ = f.ReadAt(b, at)
	b[0] ^= 0xFF
	_, _ = f.WriteAt(b, at)
}

// resign rewrites the sidecar and manifest to match a damaged file, as an
// attacker or a buggy tool could: only the restore test can catch it.
func resign(t *testing.T, dir, name string) {
	out, err := exec.Command("sha256sum", filepath.Join(dir, name)).Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Fields(string(out))[0]
	_ = os.WriteFile(filepath.Join(dir, name+".sha256"), []byte(sum+"  "+name+"\n"), 0o600)
	m, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	var old string
	for _, line := range strings.Split(string(m), "\n") {
		if strings.Contains(line, `"sha256"`) {
			old = strings.Split(line, `"`)[3]
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(strings.ReplaceAll(string(m), old, sum)), 0o600)
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 500, 100)
	s := newStore(t, backup.Config{})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "app.db")
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := counts(t, target); a != 500 || b != 500 {
		t.Fatalf("restored %d/%d rows", a, b)
	}
	// A live database is not replaced unless asked.
	live := sqlitetest.Open(t, target)
	if _, err := live.Exec("DELETE FROM a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{}); !errors.Is(err, backup.ErrTargetExists) {
		t.Fatalf("err = %v, want ErrTargetExists", err)
	}
	live.Close()
	if err := s.Restore(ctx, info.Name, target, backup.RestoreOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(target + side); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stale %s left beside the restored database", side)
		}
	}
	if a, _ := counts(t, target); a != 500 {
		t.Fatalf("overwrite restored %d rows", a)
	}
	if err := s.Restore(ctx, "nope.db", filepath.Join(t.TempDir(), "x.db"), backup.RestoreOptions{}); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	_ = os.MkdirAll(dir, 0o700)
	old := filepath.Join(dir, "backup-x.db.tmp-abc")
	fresh := filepath.Join(dir, "backup-y.db.tmp-def")
	_ = os.WriteFile(old, []byte("x"), 0o600)
	_ = os.WriteFile(fresh, []byte("x"), 0o600)
	_ = os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	newStore(t, backup.Config{Dir: dir})
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale temp kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a recent temp (maybe another backup in progress) was removed")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]backup.Config{
		"no dir":     {},
		"bad prefix": {Dir: t.TempDir(), Prefix: "../x"},
	} {
		if _, err := backup.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
