//go:build linux

package backup_test

import (
	"github.com/levqor/levqor/internal/pgtest"

	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
)

// The crash tests re-run this test binary as a child that makes a backup
// and dies (SIGKILL) or runs out of disk (RLIMIT_FSIZE) halfway; the parent
// then checks that nothing under a backup's final name survived.
const childEnv = "LEVQOR_BACKUP_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Getenv("CHILD_DB"), os.Getenv("CHILD_DIR")))
	}
	pgtest.Main(m)
}

func child(mode, dbPath, dir string) int {
	cfg := backup.Config{Dir: dir, StepPages: 8}
	switch mode {
	case "kill":
		first := true
		cfg.Progress = func(copied, total int) {
			if first && copied < total {
				first = false
				fmt.Println("copying")
				time.Sleep(time.Hour) // the parent kills us here
			}
		}
	case "diskfull":
		// Writes past 256 KiB fail with EFBIG, as on a full disk.
		signal.Ignore(syscall.SIGXFSZ)
		lim := &syscall.Rlimit{Cur: 256 << 10, Max: 256 << 10}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			fmt.Println("setrlimit:", err)
			return 2
		}
	}
	s, err := backup.New(cfg)
	if err != nil {
		fmt.Println("new:", err)
		return 2
	}
	_, err = s.BackupFile(context.Background(), dbPath)
	fmt.Println("result:", err)
	if err != nil {
		return 1
	}
	return 0
}

func runChild(t *testing.T, mode, dbPath, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "CHILD_DB="+dbPath, "CHILD_DIR="+dir)
	return cmd
}

// finalBackups lists files that look like completed backups.
func finalBackups(t *testing.T, dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") && !strings.Contains(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestCrashMidBackupLeavesNoBackup(t *testing.T) {
	db, dbPath := liveDB(t, 3000, 1024)
	db.Close()
	dir := filepath.Join(t.TempDir(), "backups")
	cmd := runChild(t, "kill", dbPath, dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "copying\n" {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q (%v)", line, err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	if got := finalBackups(t, dir); len(got) != 0 {
		t.Fatalf("a killed backup left %v under a final name", got)
	}
	s := newStore(t, backup.Config{Dir: dir})
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("manifest lists %v (%v)", list, err)
	}
	// The store still works afterwards.
	if _, err := s.BackupFile(context.Background(), dbPath); err != nil {
		t.Fatal(err)
	}
}

func TestDiskFullLeavesNoBackup(t *testing.T) {
	small, _ := liveDB(t, 10, 10)
	dir := filepath.Join(t.TempDir(), "backups")
	earlier := newStore(t, backup.Config{Dir: dir})
	prev, err := earlier.Backup(context.Background(), small)
	if err != nil {
		t.Fatal(err)
	}
	db, dbPath := liveDB(t, 2000, 1024) // ~2.5 MB, far over the limit
	db.Close()
	out, err := runChild(t, "diskfull", dbPath, dir).CombinedOutput()
	if err == nil {
		t.Fatalf("backup succeeded past the file size limit: %s", out)
	}
	t.Logf("child: %s", out)
	if !strings.Contains(string(out), "result: backup: copy database") {
		t.Fatalf("child did not fail cleanly: %s", out)
	}
	if got := finalBackups(t, dir); len(got) != 1 || got[0] != prev.Name {
		t.Fatalf("disk full left %v under a final name (want only the earlier %s)", got, prev.Name)
	}
	if _, err := earlier.Verify(context.Background(), prev.Name); err != nil {
		t.Fatalf("the earlier backup was harmed: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file %s not removed after a failed backup", e.Name())
		}
	}
}
