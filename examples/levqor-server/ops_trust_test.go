package main_test

// The ops commands do exactly what they say: each test runs the real
// binary as an operator would.

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backupOnce runs `backup` against data and returns the new backup's path.
func backupOnce(t *testing.T, data string, env ...string) string {
	t.Helper()
	out, code := cliEnv(t, data, env, "backup")
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	entries, _ := filepath.Glob(filepath.Join(data, "backups", "*.db"))
	if len(entries) == 0 {
		t.Fatal("no backup written")
	}
	return entries[len(entries)-1]
}

// newData makes a data directory with a server-created database.
func newData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+data)
	expect(t, s.do("POST", "/api/auth/register", "", creds("ops@example.com", "operations")), 201, "register")
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	s.done <- nil
	return data
}

func copyWithSidecars(t *testing.T, src, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	for _, ext := range []string{"", ".sha256", ".hmac"} {
		if b, err := os.ReadFile(src + ext); err == nil {
			_ = os.WriteFile(dst+ext, b, 0o600)
		}
	}
	return dst
}

// TestBackupVerifyAndRestoreUseThePathNamed: a corrupted copy elsewhere is
// reported as corrupted, and restore never substitutes the good file from
// the backup directory.
func TestBackupVerifyAndRestoreUseThePathNamed(t *testing.T) {
	data := newData(t)
	good := backupOnce(t, data)
	elsewhere := copyWithSidecars(t, good, t.TempDir())
	b, _ := os.ReadFile(elsewhere)
	b[len(b)/2] ^= 0xff
	_ = os.WriteFile(elsewhere, b, 0o600)
	if out, code := cli(t, data, "", "backup", "verify", elsewhere); code != 1 || !strings.Contains(out, "checksum mismatch") {
		t.Fatalf("verify of a corrupted copy: exit %d\n%s", code, out)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if out, code := cli(t, data, "", "restore", elsewhere, target); code != 1 {
		t.Fatalf("restore of a corrupted copy: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("restore wrote the target from another file")
	}
	// Relative paths are relative to the working directory.
	cmd := exec.Command(binary, "backup", "verify", filepath.Base(good))
	cmd.Dir = filepath.Dir(good)
	cmd.Env = append(os.Environ(), "LEVQOR_DATA_DIR="+data)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK "+filepath.Base(good)) {
		t.Fatalf("relative path: %v\n%s", err, out)
	}
}

// TestBackupVerifyRefusesSpecialFiles: a symlink to /dev/zero and a FIFO
// are refused at once; a huge file's verification stops on SIGTERM.
func TestBackupVerifyRefusesSpecialFiles(t *testing.T) {
	data := newData(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "zero.db")
	_ = os.Symlink("/dev/zero", link)
	fifo := filepath.Join(dir, "fifo.db")
	_ = syscall.Mkfifo(fifo, 0o600)
	for _, p := range []string{link, fifo} {
		_ = os.WriteFile(p+".sha256", []byte(strings.Repeat("0", 64)+"  x\n"), 0o600)
		start := time.Now()
		out, code := cli(t, data, "", "backup", "verify", p)
		if code != 1 || !strings.Contains(out, "not a regular file") || time.Since(start) > 5*time.Second {
			t.Fatalf("verify %s: exit %d after %v\n%s", p, code, time.Since(start), out)
		}
	}
	big := filepath.Join(dir, "big.db")
	f, _ := os.Create(big)
	_ = f.Truncate(100 << 30)
	f.Close()
	_ = os.WriteFile(big+".sha256", []byte(strings.Repeat("0", 64)+"  big.db\n"), 0o600)
	cmd := exec.Command(binary, "backup", "verify", big)
	cmd.Env = append(os.Environ(), "LEVQOR_DATA_DIR="+data)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("verify ignored SIGTERM for over a second")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".verify-*")); len(left) != 0 {
		t.Fatalf("scratch files left: %v", left)
	}
}

// TestBackupPruneRefusesManifestPaths: a manifest entry "../../x" is
// refused and reported; the file outside the backup directory survives.
func TestBackupPruneRefusesManifestPaths(t *testing.T) {
	data := newData(t)
	backupOnce(t, data)
	victim := filepath.Join(data, "precious.txt")
	_ = os.WriteFile(victim, []byte("keep me"), 0o600)
	mpath := filepath.Join(data, "backups", "manifest.json")
	m, _ := os.ReadFile(mpath)
	_ = os.WriteFile(mpath, []byte(strings.Replace(string(m), "[", `[{"name":"../precious.txt","time":"2020-01-01T00:00:00Z"},`, 1)), 0o600)
	out, code := cliEnv(t, data, []string{"LEVQOR_BACKUP_KEEP=1"}, "backup")
	if code != 1 || !strings.Contains(out, "../precious.txt") {
		t.Fatalf("backup with a poisoned manifest: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
		t.Fatal("prune deleted a file outside the backup directory")
	}
}

// TestRestoreRefusesLiveDatabase: --force does not replace the database
// of a running server.
func TestRestoreRefusesLiveDatabase(t *testing.T) {
	data := newData(t)
	b := backupOnce(t, data)
	s := start(t, "LEVQOR_DATA_DIR="+data)
	live := filepath.Join(data, "levqor.db")
	out, code := cli(t, data, "", "restore", "--force", b, live)
	if code != 1 || !strings.Contains(out, "stop the server") {
		t.Fatalf("restore --force under a running server: exit %d\n%s", code, out)
	}
	expect(t, s.do("POST", "/api/auth/register", "", creds("after@example.com", "written after")), 201, "a write after the refused restore")
	login(t, s, "after@example.com", "written after")
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	s.done <- nil
	if out, code := cli(t, data, "", "restore", "--force", b, live); code != 0 {
		t.Fatalf("restore with the server stopped: exit %d\n%s", code, out)
	}
}

// TestBackupKeyRefusesDoctoredBackups: with LEVQOR_BACKUP_KEY, a backup
// doctored with a trigger and given a recomputed checksum is refused by
// verify and restore; without a key, verify says authenticity was not
// checked.
func TestBackupKeyRefusesDoctoredBackups(t *testing.T) {
	data := newData(t)
	key := "LEVQOR_BACKUP_KEY=an operator secret of 32+ bytes!!"
	good := backupOnce(t, data, key)
	if _, err := os.Stat(good + ".hmac"); err != nil {
		t.Fatal("no HMAC tag written with LEVQOR_BACKUP_KEY")
	}
	if out, code := cliEnv(t, data, []string{key}, "backup", "verify", good); code != 0 || !strings.Contains(out, "authenticity: OK") {
		t.Fatalf("verify with key: exit %d\n%s", code, out)
	}
	doctored := copyWithSidecars(t, good, t.TempDir())
	db, err := sql.Open("sqlite", "file:"+doctored)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER exfiltrate AFTER INSERT ON users BEGIN INSERT INTO audit_log (user_id, at, action) VALUES ('attacker', NEW.email, NEW.password_hash); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	sum, _ := exec.Command("sha256sum", doctored).Output()
	_ = os.WriteFile(doctored+".sha256", []byte(strings.Fields(string(sum))[0]+"  "+filepath.Base(doctored)+"\n"), 0o600)
	if out, code := cliEnv(t, data, []string{key}, "backup", "verify", doctored); code != 1 || !strings.Contains(out, "authenticity check failed") {
		t.Fatalf("verify of the doctored backup: exit %d\n%s", code, out)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if out, code := cliEnv(t, data, []string{key}, "restore", doctored, target); code != 1 {
		t.Fatalf("restore of the doctored backup: exit %d\n%s", code, out)
	}
	if out, code := cli(t, data, "", "backup", "verify", doctored); code != 0 || !strings.Contains(out, "NOT CHECKED") {
		t.Fatalf("without a key the doctored file is only intact, and verify must say so: exit %d\n%s", code, out)
	}
}

// TestBackupVerifyChecksSchemaAndScratch: a valid SQLite file of another
// application is not "verified"; a missing $TMPDIR does not matter.
func TestBackupVerifyChecksSchemaAndScratch(t *testing.T) {
	data := newData(t)
	good := backupOnce(t, data)
	if out, code := cliEnv(t, data, []string{"TMPDIR=/nonexistent-levqor"}, "backup", "verify", good); code != 0 {
		t.Fatalf("verify with an unusable $TMPDIR: exit %d\n%s", code, out)
	}
	other := filepath.Join(t.TempDir(), "other-app.db")
	db, _ := sql.Open("sqlite", "file:"+other)
	if _, err := db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	sum, _ := exec.Command("sha256sum", other).Output()
	_ = os.WriteFile(other+".sha256", []byte(strings.Fields(string(sum))[0]+"  other-app.db\n"), 0o600)
	if out, code := cli(t, data, "", "backup", "verify", other); code != 1 || !strings.Contains(out, "tables missing") {
		t.Fatalf("verify of another application's database: exit %d\n%s", code, out)
	}
}
