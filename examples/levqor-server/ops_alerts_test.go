package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const fakeBotToken = "123456789:AAFakeTokenForLevqorServerTests_x"

// fakeTelegram speaks the Bot API's sendMessage as Telegram does: the
// token in the path, a JSON body, {"ok":true,"result":Message} or an
// error object, and one 429 with retry_after first when tooMany is set.
type fakeTelegram struct {
	*httptest.Server
	mu      sync.Mutex
	texts   []string
	tooMany bool
}

func newFakeTelegram(t *testing.T) *fakeTelegram {
	f := &fakeTelegram{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTelegram) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fail := func(code int, desc, extra string) {
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"ok":false,"error_code":%d,"description":%q%s}`, code, desc, extra)
	}
	if r.Method != "POST" || r.URL.Path != "/bot"+fakeBotToken+"/sendMessage" {
		fail(404, "Not Found", "")
		return
	}
	var m struct {
		ChatID    string `json:"chat_id"`
		Text      string `json:"text"`
		ParseMode string `json:"parse_mode"`
	}
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil || m.Text == "" {
		fail(400, "Bad Request: message text is empty", "")
		return
	}
	if m.ChatID != "-1001" {
		fail(400, "Bad Request: chat not found", "")
		return
	}
	if f.tooMany {
		f.tooMany = false
		fail(429, "Too Many Requests: retry after 1", `,"parameters":{"retry_after":1}`)
		return
	}
	f.texts = append(f.texts, m.Text)
	fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"date":1764115200,"chat":{"id":-1001,"type":"supergroup"},"text":%q}}`, len(f.texts), m.Text)
}

// sent returns the messages delivered so far.
func (f *fakeTelegram) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.texts...)
}

func (f *fakeTelegram) env() []string {
	return []string{"TELEGRAM_BOT_TOKEN=" + fakeBotToken, "TELEGRAM_CHAT_ID=-1001", "LEVQOR_TELEGRAM_API=" + f.URL}
}

func countContaining(texts []string, sub string) int {
	n := 0
	for _, s := range texts {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestSpendAlertsOncePerCrossing: `spend`, run again and again as cron
// runs it, sends each threshold's alert to Telegram once a day (the
// spend guard remembers between runs in the data directory) and pauses
// billing at 100%. Before, it sent no alert at all.
func TestSpendAlertsOncePerCrossing(t *testing.T) {
	data := t.TempDir()
	start(t, "LEVQOR_DATA_DIR="+data)
	fs := newFakeStripe(t)
	fs.setCosts(true, true, false) // $3.20 of fees today
	tg := newFakeTelegram(t)
	tg.mu.Lock()
	tg.tooMany = true // the first delivery waits out a 429
	tg.mu.Unlock()
	env := append(tg.env(), "STRIPE_SECRET_KEY=sk_test_spend", "LEVQOR_STRIPE_API="+fs.URL)
	spend := func(limit string, wantCode int) []string {
		t.Helper()
		out, code := cliEnv(t, data, append(env, "DAILY_SPEND_LIMIT="+limit), "spend")
		if code != wantCode {
			t.Fatalf("spend with limit $%s: exit %d, want %d\n%s", limit, code, wantCode, out)
		}
		return tg.sent()
	}
	sent := spend("6", 0) // 53%
	if countContaining(sent, "at 50% of limit") != 1 || countContaining(sent, "at 80% of limit") != 0 {
		t.Fatalf("after crossing 50%%: %q", sent)
	}
	if again := spend("6", 0); len(again) != len(sent) {
		t.Fatalf("the next run alerted again: %q", again[len(sent):])
	}
	sent = spend("3", 1) // 107%
	if countContaining(sent, "at 80% of limit") != 1 || countContaining(sent, "at 100% of limit") != 1 || countContaining(sent, "at 50% of limit") != 1 {
		t.Fatalf("after crossing 100%%: %q", sent)
	}
	if again := spend("3", 1); len(again) != len(sent) {
		t.Fatalf("the next run alerted again: %q", again[len(sent):])
	}
	var flags struct {
		Paused bool `json:"billing_paused"`
	}
	if b, err := os.ReadFile(filepath.Join(data, "billing_flags.json")); err != nil || json.Unmarshal(b, &flags) != nil || !flags.Paused {
		t.Fatalf("billing flags after 100%%: %s, %v", b, err)
	}
}

// TestSpendPauseAndResume: the pause at 100% stands on later runs within
// the limit (exit 1, saying how to resume) and in doctor, until an
// operator runs `spend resume --by NAME`, which is recorded and alerted.
// Before, nothing could resume it but editing the flags file, and a run
// within the limit exited 0 without a word about the pause.
func TestSpendPauseAndResume(t *testing.T) {
	data := t.TempDir()
	start(t, "LEVQOR_DATA_DIR="+data)
	fs := newFakeStripe(t)
	fs.setCosts(true, true, false) // $3.20 of fees today
	tg := newFakeTelegram(t)
	env := append(tg.env(), "STRIPE_SECRET_KEY=sk_test_spend", "LEVQOR_STRIPE_API="+fs.URL)
	run := func(limit string, wantCode int, args ...string) string {
		t.Helper()
		out, code := cliEnv(t, data, append(env, "DAILY_SPEND_LIMIT="+limit), args...)
		if code != wantCode {
			t.Fatalf("%v with limit $%s: exit %d, want %d\n%s", args, limit, code, wantCode, out)
		}
		return out
	}
	paused := func() map[string]any {
		t.Helper()
		var flags map[string]any
		b, err := os.ReadFile(filepath.Join(data, "billing_flags.json"))
		if err != nil || json.Unmarshal(b, &flags) != nil {
			t.Fatalf("billing flags: %s, %v", b, err)
		}
		return flags
	}
	run("3", 1, "spend") // 107%: paused
	if out := run("50", 1, "spend"); !strings.Contains(out, "billing PAUSED since") || !strings.Contains(out, "spend resume --by NAME") {
		t.Fatalf("a run within the limit while paused:\n%s", out)
	}
	if out, _ := cliEnv(t, data, env, "doctor"); !strings.Contains(out, "WARN  billing paused since") {
		t.Fatalf("doctor while paused:\n%s", out)
	}
	if out := run("50", 2, "spend", "resume"); !strings.Contains(out, "--by NAME is required") || paused()["billing_paused"] != true {
		t.Fatalf("resume without --by:\n%s", out)
	}
	before := len(tg.sent())
	if out := run("50", 0, "spend", "resume", "--by", "alice"); !strings.Contains(out, "billing resumed by alice") {
		t.Fatalf("resume:\n%s", out)
	}
	if f := paused(); f["billing_paused"] != false || f["resumed_by"] != "alice" {
		t.Fatalf("billing flags after resume: %v", f)
	}
	if sent := tg.sent()[before:]; len(sent) != 1 || !strings.Contains(sent[0], "Billing resumed") || !strings.Contains(sent[0], "alice") {
		t.Fatalf("resume alerts: %q", sent)
	}
	if out := run("50", 0, "spend"); strings.Contains(out, "PAUSED") {
		t.Fatalf("a run after the resume:\n%s", out)
	}
	if out := run("50", 0, "spend", "resume", "--by", "alice"); !strings.Contains(out, "not paused") {
		t.Fatalf("resume when not paused:\n%s", out)
	}
	if out, _ := cliEnv(t, data, env, "doctor"); strings.Contains(out, "billing paused") {
		t.Fatalf("doctor after the resume:\n%s", out)
	}
}

// TestSLOAlerts: the deployment watchdog alerts on a failed deployment,
// saying whether the rollback worked, and exits 3 when it did not.
func TestSLOAlerts(t *testing.T) {
	data := t.TempDir()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	tg := newFakeTelegram(t)
	for _, tc := range []struct {
		rollback string
		code     int
		says     string
	}{
		{"touch " + filepath.Join(t.TempDir(), "rolled-back"), 1, "done"},
		{"false", 3, "FAILED"},
	} {
		before := len(tg.sent())
		withPassword := strings.Replace(bad.URL, "http://", "http://probe:s3cret-probe-password@", 1)
		out, code := cliEnv(t, data, tg.env(), "slo", "--url", withPassword, "--interval", "1ms", "--rollback-cmd", tc.rollback)
		sent := tg.sent()[before:]
		if strings.Contains(out, "s3cret") || strings.Contains(strings.Join(sent, ""), "s3cret") {
			t.Fatalf("the URL's password reached the output or an alert:\n%s\n%q", out, sent)
		}
		if code != tc.code || len(sent) != 1 || !strings.Contains(sent[0], "failed its SLO watchdog") || !strings.Contains(sent[0], tc.says) {
			t.Fatalf("slo --rollback-cmd %q: exit %d (want %d), alerts %q\n%s", tc.rollback, code, tc.code, sent, out)
		}
		if strings.Contains(out, "slo: slo:") {
			t.Fatalf("stuttering error:\n%s", out)
		}
	}
}

// TestScheduledBackupFailureAlerts: a scheduled backup that fails (here
// its off-site copy: the upload directory is a file) sends a critical
// alert; before, it only wrote a log line nobody might read.
func TestScheduledBackupFailureAlerts(t *testing.T) {
	tg := newFakeTelegram(t)
	notDir := filepath.Join(t.TempDir(), "offsite")
	if err := os.WriteFile(notDir, []byte("a file, not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, append(tg.env(), "LEVQOR_BACKUP_INTERVAL=1h", "LEVQOR_BACKUP_UPLOAD_DIR="+notDir)...)
	for deadline := time.Now().Add(30 * time.Second); countContaining(tg.sent(), "Scheduled backup failed") == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no alert 30 s after a failed scheduled backup; sent %q\n%s", tg.sent(), s.logs.String())
		}
	}
	if sent := tg.sent(); !strings.Contains(sent[len(sent)-1], "upload failed") {
		t.Fatalf("the alert does not say what failed: %q", sent)
	}
}

// TestHousekeepingFailureAlerts: housekeeping that fails (here a table it
// prunes is gone) sends a warning; before, it only wrote a log line, and
// the tables it keeps small would grow unnoticed.
func TestHousekeepingFailureAlerts(t *testing.T) {
	data := t.TempDir()
	s := start(t, "LEVQOR_DATA_DIR="+data)
	s.stop()
	db := openDB(t, data)
	if _, err := db.Exec(`DROP TABLE stripe_events`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	tg := newFakeTelegram(t)
	s = start(t, append(tg.env(), "LEVQOR_DATA_DIR="+data)...) // housekeeping runs at start
	for deadline := time.Now().Add(30 * time.Second); countContaining(tg.sent(), "Housekeeping failed") == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no alert 30 s after a failed housekeeping; sent %q\n%s", tg.sent(), s.logs.String())
		}
	}
	if sent := tg.sent(); !strings.Contains(sent[len(sent)-1], "stripe") {
		t.Fatalf("the alert does not say what failed: %q", sent)
	}
}
