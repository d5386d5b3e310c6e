package main_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/levqor/levqor/internal/pgtest"
)

// migratedReplicaEnv is the environment replicas of one new PostgreSQL
// database share, the database migrated by a server run (as the ops
// commands need).
func migratedReplicaEnv(t *testing.T) []string {
	t.Helper()
	env := []string{"LEVQOR_DATABASE_URL=" + pgtest.NewDatabase(t),
		"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes"}
	first := start(t, append(env, "LEVQOR_DATA_DIR="+t.TempDir())...)
	first.stop()
	return env
}

// TestBackupFromCronOnEveryReplica: the README's crontab installed alike on
// three replicas of one PostgreSQL runs `backup --if-due 20h` on each at
// the same minute: one backup is made between them, the others say why
// they made none, and a second round makes none. Before,
// `backup` had no such flag, and cron on every replica made a backup per
// replica every night. A plain `backup` (an operator's) always backs up.
func TestBackupFromCronOnEveryReplica(t *testing.T) {
	env := migratedReplicaEnv(t)

	var data, dirs []string
	for range 3 {
		data, dirs = append(data, t.TempDir()), append(dirs, t.TempDir())
	}
	dumps := func() int {
		n := 0
		for _, d := range dirs {
			m, _ := filepath.Glob(filepath.Join(d, "*.dump"))
			n += len(m)
		}
		return n
	}
	round := func() []string {
		outs := make([]string, len(data))
		var wg sync.WaitGroup
		for i := range data {
			wg.Go(func() {
				out, code := cliEnv(t, data[i], append(env, "LEVQOR_BACKUP_DIR="+dirs[i]), "backup", "--if-due", "20h")
				if code != 0 {
					t.Errorf("replica %d: backup --if-due: exit %d\n%s", i, code, out)
				}
				outs[i] = out
			})
		}
		wg.Wait()
		return outs
	}
	outs := round()
	if n := dumps(); n != 1 {
		t.Fatalf("three replicas' cron made %d backups; want 1\n%s", n, strings.Join(outs, "\n---\n"))
	}
	skipped := 0
	for _, out := range outs {
		if strings.Contains(out, "backup: not made:") {
			skipped++
		}
	}
	if skipped != 2 {
		t.Fatalf("%d replicas said why they made no backup; want 2\n%s", skipped, strings.Join(outs, "\n---\n"))
	}
	outs = round()
	if n := dumps(); n != 1 {
		t.Fatalf("a second round made %d more backups; want none\n%s", n-1, strings.Join(outs, "\n---\n"))
	}
	if out, code := cliEnv(t, data[0], append(env, "LEVQOR_BACKUP_DIR="+dirs[0]), "backup"); code != 0 || dumps() != 2 {
		t.Fatalf("a plain backup: exit %d, %d backups (want 2)\n%s", code, dumps(), out)
	}
	if out, code := cliEnv(t, data[0], env, "backup", "--if-due", "-1h"); code != 2 {
		t.Fatalf("backup --if-due -1h: exit %d, want 2\n%s", code, out)
	}
}
