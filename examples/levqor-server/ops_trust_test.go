package main_test

// The ops commands do exactly what they say: each test runs the real
// binary as an operator would.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
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

// TestPayoutsAfterACrash: a run killed mid-transfer leaves its payout
// leased; the next run inside the lease reports it in flight (with the
// expiry) and exits 3, never an empty report with 0; once the lease has
// expired a run finishes it without paying twice.
func TestPayoutsAfterACrash(t *testing.T) {
	data := newData(t)
	stripe := newFakeStripe(t)
	env := []string{"STRIPE_SECRET_KEY=sk_test_fake", "LEVQOR_STRIPE_API=" + stripe.URL}
	for i := 1; i <= 3; i++ {
		p := fmt.Sprintf("p%d", i)
		if out, code := cliEnv(t, data, env, "payouts", "partners", "add", "--id", p, "--account", fmt.Sprintf("acct_%d", i)); code != 0 {
			t.Fatalf("partners add: exit %d\n%s", code, out)
		}
		if out, code := cliEnv(t, data, env, "payouts", "commissions", "add", "--partner", p, "--amount", "6000", "--currency", "USD", "--ref", "inv-"+p); code != 0 {
			t.Fatalf("commissions add: exit %d\n%s", code, out)
		}
	}
	out, code := cliEnv(t, data, env, "payouts", "--dry-run")
	if code != 0 || strings.Count(out, "would pay") != 3 || !strings.Contains(out, "$60.00") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	// The first run pays p1 at Stripe, then is killed before it hears back.
	stripe.mu.Lock()
	stripe.hang = make(chan struct{})
	stripe.mu.Unlock()
	cmd := exec.Command(binary, "payouts", "--lease", "2s")
	cmd.Env = append(append(os.Environ(), "LEVQOR_DATA_DIR="+data), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(stripe.paid()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first run never reached Stripe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	stripe.mu.Lock()
	close(stripe.hang)
	stripe.hang = nil
	stripe.mu.Unlock()

	out, code = cliEnv(t, data, env, "payouts", "--dry-run")
	if code != 0 || !strings.Contains(out, "pending") || !strings.Contains(out, "leased by") {
		t.Fatalf("dry run after the crash must show the pending payout: exit %d\n%s", code, out)
	}
	out, code = cliEnv(t, data, env, "payouts")
	if code != 3 || !strings.Contains(out, "in flight") || !strings.Contains(out, "leased by") || strings.Count(out, "sent ") != 2 {
		t.Fatalf("run inside the crashed run's lease: exit %d (want 3)\n%s", code, out)
	}
	time.Sleep(2100 * time.Millisecond)
	out, code = cliEnv(t, data, env, "payouts")
	if code != 0 || strings.Count(out, "sent ") != 1 {
		t.Fatalf("run after the lease expired: exit %d\n%s", code, out)
	}
	if paid := stripe.paid(); len(paid) != 3 || paid["acct_1"] != 6000 || paid["acct_2"] != 6000 || paid["acct_3"] != 6000 {
		t.Fatalf("paid at Stripe: %v (each partner exactly once)", paid)
	}
	if out, code := cliEnv(t, data, env, "payouts"); code != 0 || strings.Contains(out, "sent ") {
		t.Fatalf("nothing left: exit %d\n%s", code, out)
	}
	out, _ = cliEnv(t, data, env, "payouts", "commissions", "list", "--partner", "p1")
	if !strings.Contains(out, "inv-p1") || !strings.Contains(out, "po_") {
		t.Fatalf("commissions list:\n%s", out)
	}
}

// TestPayoutsLedgerCommandsValidate: partners and commissions are entered
// through validated commands; amounts print with their currency's decimals.
func TestPayoutsLedgerCommandsValidate(t *testing.T) {
	data := newData(t)
	for _, args := range [][]string{
		{"partners", "add", "--id", "p1", "--account", "not-an-account"},
		{"partners", "add", "--account", "acct_1"},
		{"commissions", "add", "--partner", "nobody", "--amount", "100", "--currency", "USD", "--ref", "r1"},
		{"commissions", "add", "--partner", "p1", "--amount", "-5", "--currency", "USD", "--ref", "r1"},
		{"commissions", "add", "--partner", "p1", "--amount", "9223372036854775807", "--currency", "USD", "--ref", "r1"},
		{"commissions", "add", "--partner", "p1", "--amount", "5", "--currency", "dollars", "--ref", "r1"},
		{"commissions", "add", "--partner", "p1", "--amount", "5", "--currency", "USD"},
		{"commissions", "frob"},
	} {
		if args[0] == "commissions" && args[1] == "add" {
			if out, code := cli(t, data, "", "payouts", "partners", "add", "--id", "p1", "--account", "acct_1"); code != 0 {
				t.Fatalf("partners add: %d %s", code, out)
			}
		}
		if out, code := cli(t, data, "", append([]string{"payouts"}, args...)...); code != 2 {
			t.Errorf("payouts %v: exit %d, want 2\n%s", args, code, out)
		}
	}
	if out, code := cli(t, data, "", "payouts", "commissions", "add", "--partner", "p1", "--amount", "6000", "--currency", "jpy", "--ref", "inv-y"); code != 0 || !strings.Contains(out, "6000 JPY") {
		t.Fatalf("yen commission: exit %d\n%s", code, out)
	}
	if out, code := cli(t, data, "", "payouts", "commissions", "add", "--partner", "p1", "--amount", "6000", "--currency", "JPY", "--ref", "inv-y"); code != 0 || !strings.Contains(out, "already recorded") {
		t.Fatalf("same reference twice: exit %d\n%s", code, out)
	}
	out, code := cli(t, data, "", "payouts", "partners", "list", "--json")
	var ps []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil || len(ps) != 1 || ps[0]["account"] != "acct_1" {
		t.Fatalf("partners list --json: exit %d\n%s", code, out)
	}
}

// TestOffsiteCopiesArePruned: the off-site directory keeps what the
// local one keeps (LEVQOR_BACKUP_KEEP), each copy with its sidecar, and
// nothing else there is touched. Before, it kept every backup ever made.
func TestOffsiteCopiesArePruned(t *testing.T) {
	data, offsite := newData(t), t.TempDir()
	if err := os.WriteFile(filepath.Join(offsite, "README.txt"), []byte("the operator's own file"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"LEVQOR_BACKUP_UPLOAD_DIR=" + offsite, "LEVQOR_BACKUP_KEEP=2"}
	var made []string
	for range 4 {
		made = append(made, filepath.Base(backupOnce(t, data, env...)))
	}
	files, _ := os.ReadDir(offsite)
	var left []string
	for _, f := range files {
		left = append(left, f.Name())
	}
	want := []string{made[2], made[2] + ".sha256", made[3], made[3] + ".sha256", "README.txt"}
	slices.Sort(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Fatalf("off-site directory after 4 backups with LEVQOR_BACKUP_KEEP=2:\n%v\nwant\n%v", left, want)
	}
}

// TestDoctorWritesNoBillingTable: on a database the server has not
// started on since the billing pause moved into it (no
// levqor_billing_pause yet), doctor reports nothing paused and creates
// nothing.
func TestDoctorWritesNoBillingTable(t *testing.T) {
	data := newData(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "levqor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE levqor_billing_pause`); err != nil {
		t.Fatal(err)
	}
	out, _ := cli(t, data, "", "doctor")
	if strings.Contains(out, "billing") {
		t.Fatalf("doctor without the billing table:\n%s", out)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'levqor_billing_pause'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("doctor created the billing table (%d, %v)", n, err)
	}
}

// TestDatabaseFileIsPrivate: the SQLite database (and its -wal and -shm
// files) holds every account's email and password hash; the server makes
// it 0600 even in a data directory others can enter. Before, SQLite made
// it 0644. doctor warns about one made readable by others.
func TestDatabaseFileIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil { // e.g. a volume made by a provisioning tool
		t.Fatal(err)
	}
	s := start(t, "LEVQOR_DATA_DIR="+data)
	expect(t, s.do("POST", "/api/auth/register", "", creds("private@example.com", "private password")), 201, "register")
	for _, f := range []string{"levqor.db", "levqor.db-wal", "levqor.db-shm"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", f, fi.Mode(), err)
		}
	}
	if out, _ := cli(t, data, "", "doctor"); strings.Contains(out, "readable by other users") {
		t.Fatalf("doctor on a private database:\n%s", out)
	}
	db := filepath.Join(data, "levqor.db")
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := cli(t, data, "", "doctor"); !strings.Contains(out, "WARN  "+db+" is readable by other users (mode 0644)") {
		t.Fatalf("doctor on a 0644 database:\n%s", out)
	}
}

// TestOpsCommandsRefuseStrayArguments: a word a command does not take is
// refused (exit 2, naming it) before the command does anything. Before,
// it was ignored: `payouts dry-run`, its dashes forgotten, paid a partner
// for real, and `costs 7` printed one day, not seven.
func TestOpsCommandsRefuseStrayArguments(t *testing.T) {
	data := newData(t)
	fs := newFakeStripe(t)
	env := []string{"STRIPE_SECRET_KEY=sk_test_args", "LEVQOR_STRIPE_API=" + fs.URL}
	for _, args := range [][]string{
		{"payouts", "partners", "add", "--id", "p1", "--account", "acct_1"},
		{"payouts", "commissions", "add", "--partner", "p1", "--amount", "6000", "--currency", "USD", "--ref", "inv-1"},
	} {
		if out, code := cliEnv(t, data, env, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"payouts", "dry-run"}, "did you mean --dry-run?"},
		{[]string{"payouts", "--dry-run", "now"}, ""},
		{[]string{"payouts", "partners", "list", "extra"}, ""},
		{[]string{"costs", "7"}, ""},
		{[]string{"spend", "today"}, ""},
		{[]string{"spend", "resume", "--by", "alice", "now"}, ""},
		{[]string{"doctor", "backups"}, ""},
		{[]string{"anomaly", "20"}, ""},
		{[]string{"slo", "--url", "http://127.0.0.1:1/healthz", "5"}, ""},
		{[]string{"sitemap", "submit", "now"}, ""},
	} {
		out, code := cliEnv(t, data, env, tc.args...)
		stray := tc.args[len(tc.args)-1]
		if code != 2 || !strings.Contains(out, fmt.Sprintf("unexpected argument %q", stray)) || !strings.Contains(out, tc.hint) {
			t.Errorf("%v: exit %d, want 2 naming %q\n%.400s", tc.args, code, stray, out)
		}
	}
	if paid := fs.paid(); len(paid) != 0 {
		t.Fatalf("a refused command paid: %v", paid)
	}
	// The same partner is paid when asked properly.
	if out, code := cliEnv(t, data, env, "payouts"); code != 0 || fs.paid()["acct_1"] != 6000 {
		t.Fatalf("payouts: exit %d, paid %v\n%s", code, fs.paid(), out)
	}
}

// TestAnomalyLongLines: a line over the limit is refused with its number
// (exit 2), never a silent stop with exit 0; so is a window out of range.
func TestAnomalyLongLines(t *testing.T) {
	data := t.TempDir()
	input := "1\n2\n" + strings.Repeat("9", 70000) + "\n3\n"
	out, code := cli(t, data, input, "anomaly")
	if code != 2 || !strings.Contains(out, "line 3") {
		t.Fatalf("a 70 KB line: exit %d\n%.300s", code, out)
	}
	if out, code := cli(t, data, "1\n2\nNaN\n", "anomaly"); code != 2 || !strings.Contains(out, "line 3: not a number") {
		t.Fatalf("NaN: exit %d\n%s", code, out)
	}
	if out, code := cli(t, data, strings.Repeat("5\n", 3000), "anomaly"); code != 0 || !strings.Contains(out, "0 of 3000") {
		t.Fatalf("3000 lines: exit %d\n%s", code, out)
	}
	// A window no detector can hold is a usage error, not a panic or an
	// allocation of gigabytes.
	for _, w := range []string{"9223372036854775807", "3000000000", "1"} {
		if out, code := cli(t, data, "1\n", "anomaly", "--window", w); code != 2 || !strings.Contains(out, "Window "+w+" must be between 2 and") {
			t.Fatalf("--window %s: exit %d\n%s", w, code, out)
		}
	}
	// Zero is not the default in disguise.
	for _, args := range [][]string{{"--window", "0"}, {"--threshold", "0"}} {
		if out, code := cli(t, data, "1\n", append([]string{"anomaly"}, args...)...); code != 2 || !strings.Contains(out, "--window must be between 2 and 1048576 and --threshold positive") {
			t.Fatalf("anomaly %v: exit %d\n%s", args, code, out)
		}
	}
	// A window shorter than the default RebaselineAfter works.
	if out, code := cli(t, data, "1\n2\n1\n", "anomaly", "--window", "2"); code != 0 || !strings.Contains(out, "of 3 values anomalous") {
		t.Fatalf("--window 2: exit %d\n%s", code, out)
	}
}

// TestDoctorChecks: doctor warns about public metrics and Redis without
// persistence, and fails when tagged backups exist without the key.
func TestDoctorChecks(t *testing.T) {
	data := newData(t)
	key := "LEVQOR_BACKUP_KEY=an operator secret of 32+ bytes!!"
	backupOnce(t, data, key)
	out, code := cli(t, data, "", "doctor")
	if code != 1 || !strings.Contains(out, "FAIL  backup key") || !strings.Contains(out, "WARN  /metrics is served on the public port") {
		t.Fatalf("doctor without the key: exit %d\n%s", code, out)
	}
	rs := redistest.Start(t) // started with --appendonly no --save ""
	rs.RequireReal("doctor reads CONFIG GET appendonly/save")
	out, code = cliEnv(t, data, []string{key, "LEVQOR_REDIS_URL=" + rs.URL(), "LEVQOR_OPS_ADDR=127.0.0.1:9090"}, "doctor")
	if code != 0 || !strings.Contains(out, "WARN  redis has no persistence") || !strings.Contains(out, "Running several replicas") || !strings.Contains(out, "INFO  ops listener on 127.0.0.1:9090") {
		t.Fatalf("doctor with key, Redis without persistence: exit %d\n%s", code, out)
	}
	persistent := redistest.StartPersistent(t)
	out, _ = cliEnv(t, data, []string{key, "LEVQOR_REDIS_URL=" + persistent.URL()}, "doctor")
	if strings.Contains(out, "no persistence") || !strings.Contains(out, "PASS  redis") {
		t.Fatalf("doctor with a persistent Redis:\n%s", out)
	}
	// An upload directory that is the backup directory (here through a
	// symlink) is no second copy; a real second directory draws no warning.
	link := filepath.Join(t.TempDir(), "offsite")
	if err := os.Symlink(filepath.Join(data, "backups"), link); err != nil {
		t.Fatal(err)
	}
	const same = "WARN  LEVQOR_BACKUP_UPLOAD_DIR is the backup directory itself"
	if out, _ = cliEnv(t, data, []string{key, "LEVQOR_BACKUP_UPLOAD_DIR=" + link}, "doctor"); !strings.Contains(out, same) {
		t.Fatalf("doctor with the backup directory as upload directory:\n%s", out)
	}
	if out, _ = cliEnv(t, data, []string{key, "LEVQOR_BACKUP_UPLOAD_DIR=" + t.TempDir()}, "doctor"); strings.Contains(out, same) {
		t.Fatalf("doctor with a separate upload directory:\n%s", out)
	}
	// Lost key files are reported, not replaced: a key doctor made would
	// pass its own check and hide the loss.
	for _, f := range []string{"dsar.key", "jwt-ed25519.key"} {
		if err := os.Remove(filepath.Join(data, f)); err != nil {
			t.Fatal(err)
		}
	}
	out, code = cliEnv(t, data, []string{key}, "doctor")
	if code != 1 || !strings.Contains(out, "FAIL  signing key file") || !strings.Contains(out, "FAIL  dsar key file") || !strings.Contains(out, "the key is lost") {
		t.Fatalf("doctor with the key files gone: exit %d\n%s", code, out)
	}
	for _, f := range []string{"dsar.key", "jwt-ed25519.key"} {
		if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
			t.Fatalf("doctor made %s: %v", f, err)
		}
	}
}

// TestOpsOnPostgres: with LEVQOR_DATABASE_URL, backup uses pg_dump under
// the same contract (sidecar, tag, manifest, restore test with the
// server's tables), restore loads into a named database and refuses one in
// use, and doctor checks the connection and schema version.
func TestOpsOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	data := t.TempDir()
	env := []string{"LEVQOR_DATABASE_URL=" + url, "LEVQOR_BACKUP_KEY=an operator secret of 32+ bytes!!"}
	s := start(t, append([]string{"LEVQOR_DATA_DIR=" + data}, env...)...)
	expect(t, s.do("POST", "/api/auth/register", "", creds("pg@example.com", "postgres ops")), 201, "register")
	out, code := cliEnv(t, data, env, "backup")
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	dumps, _ := filepath.Glob(filepath.Join(data, "backups", "*.dump"))
	if len(dumps) != 1 {
		t.Fatalf("dumps %v", dumps)
	}
	for _, side := range []string{".sha256", ".hmac"} {
		if _, err := os.Stat(dumps[0] + side); err != nil {
			t.Fatalf("no %s sidecar", side)
		}
	}
	if out, code := cliEnv(t, data, env, "backup", "verify", dumps[0]); code != 0 || !strings.Contains(out, "authenticity: OK") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	// The target is named after this test's database: the PostgreSQL
	// server outlives one run of the test (go test -count).
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	target := name + "_restored"
	if out, code := cliEnv(t, data, env, "restore", dumps[0], target); code != 0 {
		t.Fatalf("restore into a new database: exit %d\n%s", code, out)
	}
	restored, err := sql.Open("pgx", strings.Replace(url, name, target, 1))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := restored.QueryRow(`SELECT COUNT(*) FROM users WHERE email = 'pg@example.com'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("restored users %d: %v", n, err)
	}
	if out, code := cliEnv(t, data, env, "restore", "--force", dumps[0], target); code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("restore over a database in use: exit %d\n%s", code, out)
	}
	restored.Close()
	out, _ = cliEnv(t, data, env, "doctor")
	if !strings.Contains(out, "PASS  database") || !strings.Contains(out, "PASS  schema version") || strings.Contains(out, "FAIL  database") {
		t.Fatalf("doctor on PostgreSQL:\n%s", out)
	}
}

// TestOpsCommandsNeedTheServersDatabase: an ops command pointed at a
// database the server never made (a cron job without the server's
// environment) fails and names the cause. It creates nothing there: no
// new SQLite file, no table in another application's database. Before,
// `payouts` made a new, empty database, found nothing to pay and exited 0.
func TestOpsCommandsNeedTheServersDatabase(t *testing.T) {
	commands := [][]string{
		{"doctor"}, {"backup"}, {"costs"}, {"payouts"}, {"payouts", "--dry-run"},
		{"payouts", "partners", "list"}, {"payouts", "partners", "add", "--id", "p1", "--account", "acct_1"},
		{"payouts", "commissions", "list"}, {"spend"}, {"spend", "resume", "--by", "alice"},
	}
	run := func(t *testing.T, data string, env []string, want string) {
		// Stripe configured (never reached), so payouts gets as far as the database.
		env = append(env, "STRIPE_SECRET_KEY=sk_test_unused", "LEVQOR_STRIPE_API=http://127.0.0.1:1")
		for _, args := range commands {
			out, code := cliEnv(t, data, env, args...)
			if code == 0 || !strings.Contains(out, want) {
				t.Errorf("%s: exit %d, want non-zero and %q:\n%s", strings.Join(args, " "), code, want, out)
			}
		}
	}
	t.Run("no database", func(t *testing.T) {
		data := t.TempDir()
		run(t, data, nil, "no database at "+filepath.Join(data, "levqor.db"))
		for _, f := range []string{"levqor.db", "dsar.key", "jwt-ed25519.key"} {
			if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
				t.Fatalf("%s was created: %v", f, err)
			}
		}
	})
	tables := func(t *testing.T, db *sql.DB, q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("another application's SQLite file", func(t *testing.T) {
		data := t.TempDir()
		db := openDB(t, data)
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
			t.Fatal(err)
		}
		run(t, data, nil, "has no levqor-server schema")
		if n := tables(t, db, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`); n != 1 {
			t.Fatalf("%d tables in the other application's database, want its 1", n)
		}
	})
	t.Run("an empty PostgreSQL database", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		run(t, t.TempDir(), []string{"LEVQOR_DATABASE_URL=" + url}, "has no levqor-server schema")
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if n := tables(t, db, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'`); n != 0 {
			t.Fatalf("%d tables created in the empty database", n)
		}
	})
}

// TestScheduledBackupsSurviveRestarts: LEVQOR_BACKUP_INTERVAL counts from
// the newest backup, not from the start of the process. A server started
// with no backup makes one at once; restarted, it schedules the next one
// an interval after that backup. Before, every start waited a whole
// interval, so a server deployed more often than the interval never made
// a backup at all.
func TestScheduledBackupsSurviveRestarts(t *testing.T) {
	data := t.TempDir()
	env := []string{"LEVQOR_DATA_DIR=" + data, "LEVQOR_BACKUP_INTERVAL=1h"}
	s := start(t, env...)
	manifest := filepath.Join(data, "backups", "manifest.json")
	list := waitVerifiedBackup(t, s, manifest)
	s.stop()
	s = start(t, env...)
	want := "msg=\"scheduled backups: next\" at=" + list[0].Time.Add(time.Hour).UTC().Format(time.RFC3339)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.logs.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted server did not schedule %q:\n%s", want, s.logs.String())
		}
	}
	if m, _ := filepath.Glob(filepath.Join(data, "backups", "*.db")); len(m) != 1 {
		t.Fatalf("%d backups after the restart, want the first one only: %v", len(m), m)
	}
	// A backup that never passed its check does not count: with the
	// only one unverified (the process died before its check, so it was
	// never recorded in the schedule either), the next start backs up at
	// once.
	s.stop()
	editOnlyBackup(t, manifest, func(e map[string]any) {
		if e["verified_at"] == nil {
			t.Fatalf("the backup was not verified: %v", e)
		}
		delete(e, "verified_at")
	})
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "levqor.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE backup_schedule SET last_at = '', last_name = '', last_by = ''`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = start(t, env...)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(data, "backups", "*.db")); len(m) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new backup 30 s after a start whose only backup is unverified:\n%s", s.logs.String())
		}
	}
}

// TestOffsiteCopyRestores: the copy `backup` uploads to
// LEVQOR_BACKUP_UPLOAD_DIR verifies (authenticity included) and restores
// on its own, as it must when the local disk is gone. Before, only the
// database file was uploaded: verify and restore refused the copy for its
// missing checksum sidecar.
func TestOffsiteCopyRestores(t *testing.T) {
	data := newData(t)
	offsite := t.TempDir()
	env := []string{"LEVQOR_BACKUP_UPLOAD_DIR=" + offsite, "LEVQOR_BACKUP_KEY=an operator secret of 32+ bytes!!"}
	if out, code := cliEnv(t, data, env, "backup"); code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	copies, _ := filepath.Glob(filepath.Join(offsite, "*.db"))
	if len(copies) != 1 {
		t.Fatalf("off-site copies: %v", copies)
	}
	// doctor checks the off-site copy of the newest backup, and says so
	// when it is missing its sidecar or differs.
	if out, _ := cliEnv(t, data, env, "doctor"); !strings.Contains(out, "PASS  off-site copy") {
		t.Fatalf("doctor with the off-site copy in place:\n%s", out)
	}
	sidecar, _ := os.ReadFile(copies[0] + ".sha256")
	_ = os.Remove(copies[0] + ".sha256")
	if out, code := cliEnv(t, data, env, "doctor"); code != 1 || !strings.Contains(out, "FAIL  off-site copy") || !strings.Contains(out, "no checksum sidecar") {
		t.Fatalf("doctor with the off-site sidecar gone: exit %d\n%s", code, out)
	}
	_ = os.WriteFile(copies[0]+".sha256", sidecar, 0o600)
	good, _ := os.ReadFile(copies[0])
	bad := slices.Clone(good)
	bad[len(bad)/2] ^= 1
	_ = os.WriteFile(copies[0], bad, 0o600)
	if out, code := cliEnv(t, data, env, "doctor"); code != 1 || !strings.Contains(out, "differs from the backup") {
		t.Fatalf("doctor with a damaged off-site copy: exit %d\n%s", code, out)
	}
	_ = os.WriteFile(copies[0], good, 0o600)
	if err := os.RemoveAll(filepath.Join(data, "backups")); err != nil { // the local disk is gone
		t.Fatal(err)
	}
	if out, code := cliEnv(t, data, env, "backup", "verify", copies[0]); code != 0 || !strings.Contains(out, "authenticity: OK") {
		t.Fatalf("verify of the off-site copy: exit %d\n%s", code, out)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if out, code := cliEnv(t, data, env, "restore", copies[0], target); code != 0 {
		t.Fatalf("restore from the off-site copy: exit %d\n%s", code, out)
	}
	db, err := sql.Open("sqlite", "file:"+target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var email string
	if err := db.QueryRow(`SELECT email FROM users`).Scan(&email); err != nil || email != "ops@example.com" {
		t.Fatalf("restored users: %q, %v", email, err)
	}
}

// TestScheduledBackupsSharedDirectory: replicas on one PostgreSQL sharing
// one LEVQOR_BACKUP_DIR count from each other's backups: the second
// replica to start finds the first one's fresh backup there, makes none
// and schedules the next an interval after it.
func TestScheduledBackupsSharedDirectory(t *testing.T) {
	url := pgtest.NewDatabase(t)
	shared := t.TempDir()
	env := []string{"LEVQOR_DATABASE_URL=" + url, "LEVQOR_BACKUP_DIR=" + shared, "LEVQOR_BACKUP_INTERVAL=1h",
		"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes"}
	first := start(t, append(env, "LEVQOR_DATA_DIR="+t.TempDir())...)
	list := waitVerifiedBackup(t, first, filepath.Join(shared, "manifest.json"))
	second := start(t, append(env, "LEVQOR_DATA_DIR="+t.TempDir())...)
	want := "msg=\"scheduled backups: next\" at=" + list[0].Time.Add(time.Hour).UTC().Format(time.RFC3339)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(second.logs.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("second replica did not schedule %q:\n%s", want, second.logs.String())
		}
	}
	if m, _ := filepath.Glob(filepath.Join(shared, "*.dump")); len(m) != 1 {
		t.Fatalf("%d backups in the shared directory, want the first replica's only: %v", len(m), m)
	}
}

// TestScheduledBackupsOnceAcrossReplicas: three replicas of one
// PostgreSQL database started at once with the same LEVQOR_BACKUP_INTERVAL
// (two sharing a backup directory, one with its own) make one backup
// between them, not one each; doctor on a replica whose directory holds
// none says where the newest is instead of failing; a backup made by the
// backup command is recorded for the schedule too. Before, each replica
// backed up at start and then at every interval, in step with the others
// (measured with a 1-minute interval: 3 backups at start, 2 more a minute
// later).
func TestScheduledBackupsOnceAcrossReplicas(t *testing.T) {
	url := pgtest.NewDatabase(t)
	shared, own := t.TempDir(), t.TempDir()
	env := []string{"LEVQOR_DATABASE_URL=" + url, "LEVQOR_BACKUP_INTERVAL=1h",
		"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes"}
	dataOwn := t.TempDir()
	replicas := []*server{
		launch(t, append(env, "LEVQOR_BACKUP_DIR="+shared, "LEVQOR_DATA_DIR="+t.TempDir())...),
		launch(t, append(env, "LEVQOR_BACKUP_DIR="+shared, "LEVQOR_DATA_DIR="+t.TempDir())...),
		launch(t, append(env, "LEVQOR_BACKUP_DIR="+own, "LEVQOR_DATA_DIR="+dataOwn)...),
	}
	for _, r := range replicas {
		r.waitHealthy()
	}
	dumps := func() []string {
		a, _ := filepath.Glob(filepath.Join(shared, "*.dump"))
		b, _ := filepath.Glob(filepath.Join(own, "*.dump"))
		return append(a, b...)
	}
	// Every replica schedules the next backup an hour after the one made.
	var next string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := 0
		for _, r := range replicas {
			if i := strings.Index(r.logs.String(), `msg="scheduled backups: next" at=`); i >= 0 {
				line := r.logs.String()[i:]
				line = line[:strings.IndexByte(line, ' ')+len(" at=2026-01-01T00:00:00Z")+1]
				if next == "" || line == next {
					next = line
					n++
				}
			}
		}
		if n == len(replicas) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas did not all schedule %q (backups %v):\n%s\n%s\n%s", next, dumps(),
				replicas[0].logs.String(), replicas[1].logs.String(), replicas[2].logs.String())
		}
	}
	time.Sleep(time.Second) // a second backup, if any, would have started
	if d := dumps(); len(d) != 1 {
		t.Fatalf("%d backups from three replicas started at once, want 1: %v", len(d), d)
	}
	replicaEnv := append(env, "LEVQOR_BACKUP_DIR="+own)
	out, code := cliEnv(t, dataOwn, replicaEnv, "doctor")
	if inOwn, _ := filepath.Glob(filepath.Join(own, "*.dump")); len(inOwn) == 0 {
		if code != 0 || !strings.Contains(out, "WARN  backup freshness: none recent in "+own) || !strings.Contains(out, "was made on another machine") {
			t.Fatalf("doctor on the replica without the backup: exit %d\n%s", code, out)
		}
	} else if !strings.Contains(out, "PASS  backup freshness") {
		t.Fatalf("doctor on the replica with the backup: exit %d\n%s", code, out)
	}
	// A fourth replica started later, with a directory of its own, makes
	// no backup, and its ops dashboard names the one made elsewhere.
	fourth, ops := t.TempDir(), freeAddr(t)
	start(t, append(env, "LEVQOR_BACKUP_DIR="+fourth, "LEVQOR_DATA_DIR="+t.TempDir(), "LEVQOR_OPS_ADDR="+ops)...)
	var d dashboardJSON
	if st, body := opsGet(t, ops, "/dashboard.json"); st != 200 || json.Unmarshal([]byte(body), &d) != nil ||
		d.Backups.Newest != filepath.Base(dumps()[0]) || !d.Backups.Verified || d.Backups.Elsewhere == "" || d.Backups.Count != 0 {
		t.Fatalf("the fourth replica's dashboard (backups made %v): %d %.600s", dumps(), st, body)
	}
	if m, _ := filepath.Glob(filepath.Join(fourth, "*.dump")); len(m) != 0 || len(dumps()) != 1 {
		t.Fatalf("the fourth replica backed up: %v", m)
	}
	// The backup command's backup is recorded: doctor elsewhere names it,
	// and checks its off-site copy by the copy's own checksum.
	offsite := t.TempDir()
	if out, code := cliEnv(t, dataOwn, append(replicaEnv, "LEVQOR_BACKUP_UPLOAD_DIR="+offsite), "backup"); code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	made, _ := filepath.Glob(filepath.Join(own, "*.dump")) // sorted: oldest first
	newest := filepath.Base(made[len(made)-1])
	elsewhere := append(env, "LEVQOR_BACKUP_DIR="+t.TempDir(), "LEVQOR_BACKUP_UPLOAD_DIR="+offsite)
	out, code = cliEnv(t, t.TempDir(), elsewhere, "doctor")
	if code != 0 || !strings.Contains(out, newest) || !strings.Contains(out, "PASS  off-site copy") {
		t.Fatalf("doctor elsewhere after the backup command (newest %s): exit %d\n%s", newest, code, out)
	}
	if err := os.WriteFile(filepath.Join(offsite, newest), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := cliEnv(t, t.TempDir(), elsewhere, "doctor"); code != 1 || !strings.Contains(out, "FAIL  off-site copy") {
		t.Fatalf("doctor elsewhere with the off-site copy damaged: exit %d\n%s", code, out)
	}
}

// backupEntry is a backup's manifest entry, as far as these tests read it.
type backupEntry struct {
	Time     time.Time `json:"time"`
	Verified time.Time `json:"verified_at"`
}

// waitVerifiedBackup waits until the manifest at path lists a verified
// backup (one whose check finished: an unverified one does not count for
// the schedule) and returns the manifest's entries.
func waitVerifiedBackup(t *testing.T, s *server, path string) []backupEntry {
	t.Helper()
	var list []backupEntry
	for deadline := time.Now().Add(30 * time.Second); len(list) == 0 || list[0].Verified.IsZero(); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(b, &list)
		}
		if (len(list) == 0 || list[0].Verified.IsZero()) && time.Now().After(deadline) {
			t.Fatalf("no verified backup 30 s after a start without one (interval 1h):\n%s", s.logs.String())
		}
	}
	return list
}

// TestRecoveryOnANewMachine: the database restored from a backup into a
// new data directory, without the old key files. doctor says the keys
// are missing; the server refuses to start without the DSAR key the data
// was pseudonymised with, and makes no key file of its own; with the old
// key files copied over it starts, and tokens issued before still work.
func TestRecoveryOnANewMachine(t *testing.T) {
	old := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+old)
	expect(t, s.do("POST", "/api/auth/register", "", creds("survivor@example.com", "recovery password")), 201, "register")
	access, _ := login(t, s, "survivor@example.com", "recovery password")
	s.stop()
	path := backupOnce(t, old)

	fresh := t.TempDir()
	if out, code := cli(t, fresh, "", "restore", path, filepath.Join(fresh, "levqor.db")); code != 0 {
		t.Fatalf("restore into a new data directory: exit %d\n%s", code, out)
	}
	if out, code := cli(t, fresh, "", "doctor"); code != 1 || !strings.Contains(out, "FAIL  dsar key file") || !strings.Contains(out, "FAIL  signing key file") {
		t.Fatalf("doctor without the key files: exit %d\n%s", code, out)
	}
	refused := launch(t, "LEVQOR_DATA_DIR="+fresh)
	select {
	case err := <-refused.done:
		refused.done <- err
		if err == nil || !strings.Contains(refused.logs.String(), "dsar.key is missing") {
			t.Fatalf("start without the DSAR key: exit %v\n%s", err, refused.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server started without the DSAR key the data was pseudonymised with")
	}
	if _, err := os.Stat(filepath.Join(fresh, "dsar.key")); !os.IsNotExist(err) {
		t.Fatalf("the refused start left a key file: %v", err)
	}
	for _, f := range []string{"dsar.key", "jwt-ed25519.key"} {
		b, err := os.ReadFile(filepath.Join(old, f))
		if err != nil || os.WriteFile(filepath.Join(fresh, f), b, 0o600) != nil {
			t.Fatal(err)
		}
	}
	s = start(t, "LEVQOR_DATA_DIR="+fresh)
	expect(t, s.do("GET", "/api/me", access, ""), 200, "a token issued before the loss")
	login(t, s, "survivor@example.com", "recovery password")
}

// TestDoctorBackupAge: the newest backup may be a day old (and two hours),
// or LEVQOR_BACKUP_INTERVAL old when backups are scheduled less often: a
// weekly schedule is not a failure three days in.
func TestDoctorBackupAge(t *testing.T) {
	data := newData(t)
	backupOnce(t, data)
	manifest := filepath.Join(data, "backups", "manifest.json")
	editOnlyBackup(t, manifest, func(e map[string]any) {
		e["time"] = time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339Nano)
	})
	if out, _ := cli(t, data, "", "doctor"); !strings.Contains(out, "FAIL  backup freshness") || !strings.Contains(out, "newest backup is 72h0m0s old") {
		t.Fatalf("doctor with a 3-day-old backup, daily backups:\n%s", out)
	}
	if out, _ := cliEnv(t, data, []string{"LEVQOR_BACKUP_INTERVAL=168h"}, "doctor"); !strings.Contains(out, "PASS  backup freshness") {
		t.Fatalf("doctor with a 3-day-old backup, weekly backups:\n%s", out)
	}
	if out, _ := cliEnv(t, data, []string{"LEVQOR_BACKUP_INTERVAL=48h"}, "doctor"); !strings.Contains(out, "FAIL  backup freshness") {
		t.Fatalf("doctor with a 3-day-old backup, backups every two days:\n%s", out)
	}
}

// editOnlyBackup rewrites the manifest at path, which must list exactly
// one backup, after edit changed that backup's entry.
func editOnlyBackup(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("manifest %s: %v", b, err)
	}
	edit(entries[0])
	if b, err = json.Marshal(entries); err != nil || os.WriteFile(path, b, 0o600) != nil {
		t.Fatal(err)
	}
}
