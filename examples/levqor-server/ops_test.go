package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs one ops command with the given data directory.
func cli(t *testing.T, data, stdin string, args ...string) (string, int) {
	t.Helper()
	return cliRun(t, data, stdin, nil, args...)
}

// cliEnv runs one ops command with extra environment.
func cliEnv(t *testing.T, data string, env []string, args ...string) (string, int) {
	t.Helper()
	return cliRun(t, data, "", env, args...)
}

func cliRun(t *testing.T, data, stdin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "LEVQOR_DATA_DIR="+data), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestOpsCommands(t *testing.T) {
	data := t.TempDir()
	// A server run creates the database; register one user through it.
	s := start(t, "LEVQOR_DATA_DIR="+data)
	expect(t, s.do("POST", "/api/auth/register", "", creds("ops@example.com", "operations")), 201, "register")

	out, code := cli(t, data, "", "doctor")
	if code != 1 || !strings.Contains(out, "FAIL  backup freshness") || !strings.Contains(out, "PASS  database integrity") || !strings.Contains(out, "PASS  schema version") {
		t.Fatalf("doctor before any backup: exit %d\n%s", code, out)
	}
	out, code = cli(t, data, "", "backup")
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	entries, _ := os.ReadDir(filepath.Join(data, "backups"))
	var name string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") {
			name = e.Name()
		}
	}
	if name == "" {
		t.Fatalf("no backup written: %v", entries)
	}
	out, code = cli(t, data, "", "backup", "verify", filepath.Join(data, "backups", name))
	if code != 0 || !strings.Contains(out, "OK ") || !strings.Contains(out, "authenticity: NOT CHECKED") {
		t.Fatalf("backup verify: exit %d\n%s", code, out)
	}
	out, code = cli(t, data, "", "doctor")
	if code != 0 || !strings.Contains(out, "0 failed") {
		t.Fatalf("doctor after a backup: exit %d\n%s", code, out)
	}
	live := filepath.Join(data, "levqor.db")
	if out, code = cli(t, data, "", "restore", filepath.Join(data, "backups", name), live); code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("restore over the live database without --force: exit %d\n%s", code, out)
	}
	// The backup itself, or a directory, is never a target; the backup
	// still verifies afterwards.
	bpath := filepath.Join(data, "backups", name)
	for _, to := range []string{bpath, t.TempDir()} {
		if out, code = cli(t, data, "", "restore", "--force", bpath, to); code != 1 || !strings.Contains(out, "restore refused") {
			t.Fatalf("restore --force onto %s: exit %d\n%s", to, code, out)
		}
	}
	if out, code = cli(t, data, "", "backup", "verify", bpath); code != 0 {
		t.Fatalf("the backup after a refused restore onto itself: exit %d\n%s", code, out)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if out, code = cli(t, data, "", "restore", filepath.Join(data, "backups", name), target); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if out, code = cli(t, data, "", "restore", filepath.Join(data, "backups", name), target); code != 1 || !strings.Contains(out, "exists; --force replaces it") {
		t.Fatalf("restore over an existing file without --force: exit %d\n%s", code, out)
	}

	out, code = cli(t, data, "1\n2\n1\n2\n1\n2\n1\n2\n1\n2\n1\n2\n40\n2\n", "anomaly", "--window", "10")
	if code != 0 || !strings.Contains(out, "line 13: 40") || !strings.Contains(out, "1 of 14 values anomalous") {
		t.Fatalf("anomaly: exit %d\n%s", code, out)
	}
	if out, code = cli(t, data, "1\nseven\n", "anomaly"); code != 2 || !strings.Contains(out, "line 2: not a number") {
		t.Fatalf("anomaly with bad input: exit %d\n%s", code, out)
	}
	if out, code = cli(t, data, "", "spend"); code != 2 || !strings.Contains(out, "unknown") {
		t.Fatalf("spend without sources must be unknown (2): exit %d\n%s", code, out)
	}
	out, code = cli(t, data, "", "costs", "--json")
	var report map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &report) != nil || !strings.Contains(out, `"label": "users"`) {
		t.Fatalf("costs --json: exit %d\n%s", code, out)
	}
	for _, days := range []string{"0", "-1", "3661", "9223372036854775807"} {
		if out, code = cli(t, data, "", "costs", "--days", days); code != 2 || !strings.Contains(out, "--days must be between 1 and 3660") {
			t.Fatalf("costs --days %s: exit %d\n%s", days, code, out)
		}
	}
	if out, code = cli(t, data, "", "costs", "--days", "3660"); code != 0 || !strings.Contains(out, "Cost report") {
		t.Fatalf("costs --days 3660: exit %d\n%s", code, out)
	}
	if out, code = cli(t, data, "", "payouts", "--dry-run"); code != 0 || !strings.Contains(out, "STATUS") {
		t.Fatalf("payouts --dry-run: exit %d\n%s", code, out)
	}
	if out, code = cli(t, data, "", "payouts"); code != 2 || !strings.Contains(out, "STRIPE_SECRET_KEY") {
		t.Fatalf("payouts without Stripe: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{{"--count", "0"}, {"--count", "-1"}, {"--interval", "0s"}, {"--interval", "-1s"}} {
		if out, code = cli(t, data, "", append([]string{"slo", "--url", "http://127.0.0.1:1/"}, args...)...); code != 2 || !strings.Contains(out, "--count must be at least 1 and --interval positive") {
			t.Fatalf("slo %v: exit %d\n%s", args, code, out)
		}
	}

	// The watchdog against a deployment that answers 503 rolls back.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	marker := filepath.Join(t.TempDir(), "rolled-back")
	out, code = cli(t, data, "", "slo", "--url", bad.URL, "--interval", "1ms", "--rollback-cmd", "touch "+marker)
	if code != 1 || !strings.Contains(out, "verdict: failed") {
		t.Fatalf("slo: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("rollback command did not run")
	}

	for _, c := range []string{"serve", "backup", "restore", "spend", "costs", "payouts", "slo", "anomaly", "doctor"} {
		out, code := cli(t, data, "", c, "--help")
		if code != 0 || !strings.Contains(out, "usage: levqor-server "+c) || !strings.Contains(out, "LEVQOR_DATA_DIR") {
			t.Fatalf("%s --help: exit %d\n%s", c, code, out)
		}
	}
	if out, code := cli(t, data, "", "frobnicate"); code != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: exit %d\n%s", code, out)
	}
}
