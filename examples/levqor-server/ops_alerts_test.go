package main_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
)

const fakeBotToken = "123456789:AAFakeTokenForLevqorServerTests_x"

// fakeTelegram speaks the Bot API's sendMessage and getChat as Telegram
// does: the token in the path (401 for another bot token), a JSON body,
// {"ok":true,"result":...} or an error object, "chat not found" for any
// chat but -1001, and one 429 with retry_after first when tooMany is set.
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
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+fakeBotToken+"/")
	switch {
	case r.Method != "POST":
		fail(404, "Not Found", "")
		return
	case !ok && (strings.HasSuffix(r.URL.Path, "/sendMessage") || strings.HasSuffix(r.URL.Path, "/getChat")):
		fail(401, "Unauthorized", "")
		return
	case method == "getChat":
		var q struct {
			ChatID string `json:"chat_id"`
		}
		if json.NewDecoder(r.Body).Decode(&q) != nil || q.ChatID != "-1001" {
			fail(400, "Bad Request: chat not found", "")
			return
		}
		fmt.Fprint(w, `{"ok":true,"result":{"id":-1001,"title":"levqor alerts","type":"supergroup"}}`)
		return
	case method != "sendMessage":
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
	if out, code := cliEnv(t, data, env, "spend", "resume", "--by", "test"); code != 0 || !strings.Contains(out, "billing resumed by test") {
		t.Fatalf("billing not paused after 100%%: exit %d\n%s", code, out)
	}
}

// TestSpendPauseAndResume: two machines share one PostgreSQL database;
// `spend` runs from cron on the first. Its pause at 100% is seen on the
// second (dashboard, doctor), stands on later runs within the limit (exit
// 1, saying how to resume) until an operator runs `spend resume --by
// NAME` on either machine, which is recorded and alerted. Before, the
// pause lived in a file on the first machine only, nothing but editing it
// resumed billing, and a run within the limit exited 0 without a word.
// A flags file left by that version is imported once.
func TestSpendPauseAndResume(t *testing.T) {
	url := pgtest.NewDatabase(t)
	cronData, otherData, ops := t.TempDir(), t.TempDir(), freeAddr(t)
	fs := newFakeStripe(t)
	fs.setCosts(true, true, false) // $3.20 of fees today
	tg := newFakeTelegram(t)
	env := append(tg.env(), "LEVQOR_DATABASE_URL="+url, "STRIPE_SECRET_KEY=sk_test_spend", "LEVQOR_STRIPE_API="+fs.URL)
	other := start(t, append(env, "LEVQOR_DATA_DIR="+otherData, "LEVQOR_OPS_ADDR="+ops)...)
	run := func(data, limit string, wantCode int, args ...string) string {
		t.Helper()
		out, code := cliEnv(t, data, append(env, "DAILY_SPEND_LIMIT="+limit), args...)
		if code != wantCode {
			t.Fatalf("%v with limit $%s: exit %d, want %d\n%s", args, limit, code, wantCode, out)
		}
		return out
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	pause := func() (paused bool, reason, by string) {
		t.Helper()
		if err := db.QueryRow(`SELECT paused = 1, reason, resumed_by FROM levqor_billing_pause`).Scan(&paused, &reason, &by); err != nil {
			t.Fatal(err)
		}
		return paused, reason, by
	}

	run(cronData, "3", 1, "spend") // 107%: paused
	if out := run(cronData, "50", 1, "spend"); !strings.Contains(out, "billing PAUSED since") || !strings.Contains(out, "spend resume --by NAME") {
		t.Fatalf("a run within the limit while paused:\n%s", out)
	}
	if out, _ := cliEnv(t, otherData, env, "doctor"); !strings.Contains(out, "WARN  billing paused since") {
		t.Fatalf("doctor on the other machine while paused:\n%s", out)
	}
	var d dashboardJSON
	if st, body := opsGet(t, ops, "/dashboard.json"); st != 200 || json.Unmarshal([]byte(body), &d) != nil || d.Spend.Paused != "yes" {
		t.Fatalf("the other machine's dashboard while paused: %d %.500s", st, body)
	}
	if out := run(otherData, "50", 2, "spend", "resume"); !strings.Contains(out, "--by NAME is required") {
		t.Fatalf("resume without --by:\n%s", out)
	}
	if paused, _, _ := pause(); !paused {
		t.Fatal("resume without --by resumed")
	}
	before := len(tg.sent())
	if out := run(otherData, "50", 0, "spend", "resume", "--by", "alice"); !strings.Contains(out, "billing resumed by alice") {
		t.Fatalf("resume on the other machine:\n%s", out)
	}
	if paused, _, by := pause(); paused || by != "alice" {
		t.Fatalf("after the resume: paused %v, resumed by %q", paused, by)
	}
	if sent := tg.sent()[before:]; len(sent) != 1 || !strings.Contains(sent[0], "Billing resumed") || !strings.Contains(sent[0], "alice") {
		t.Fatalf("resume alerts: %q", sent)
	}
	if out := run(cronData, "50", 0, "spend"); strings.Contains(out, "PAUSED") {
		t.Fatalf("a run after the resume:\n%s", out)
	}
	if out := run(cronData, "50", 0, "spend", "resume", "--by", "alice"); !strings.Contains(out, "not paused") {
		t.Fatalf("resume when not paused:\n%s", out)
	}
	if out, _ := cliEnv(t, otherData, env, "doctor"); strings.Contains(out, "billing paused") {
		t.Fatalf("doctor after the resume:\n%s", out)
	}

	// A paused flags file of the earlier version: doctor reports it and
	// writes nothing; the next spend imports it once.
	legacy := filepath.Join(cronData, "billing_flags.json")
	if err := os.WriteFile(legacy, []byte(`{"billing_paused": true, "pause_reason": "daily spend at 100% (old)"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _ := cliEnv(t, cronData, env, "doctor"); !strings.Contains(out, "billing_flags.json is from an earlier version") {
		t.Fatalf("doctor with a legacy flags file:\n%s", out)
	}
	if paused, _, _ := pause(); paused {
		t.Fatal("doctor imported the legacy flags file")
	}
	run(cronData, "50", 1, "spend")
	if paused, reason, _ := pause(); !paused || reason != "daily spend at 100% (old)" {
		t.Fatalf("after importing the legacy file: paused %v, reason %q", paused, reason)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("the legacy file is still in place: %v", err)
	}
	run(cronData, "50", 0, "spend", "resume", "--by", "alice")
	run(cronData, "50", 0, "spend") // imported once: the resume stands
	other.stop()
}

// TestSpendFromCronOnEveryReplica: `spend` runs from cron on three
// machines sharing one PostgreSQL database, at once and again: each
// threshold crossed alerts once between them. Before, each machine kept
// its record in its own data directory and alerted once per machine. A
// record file of that version is imported once.
func TestSpendFromCronOnEveryReplica(t *testing.T) {
	url := pgtest.NewDatabase(t)
	fs := newFakeStripe(t)
	fs.setCosts(true, true, false) // $3.20 of fees today
	tg := newFakeTelegram(t)
	env := append(tg.env(), "LEVQOR_DATABASE_URL="+url, "STRIPE_SECRET_KEY=sk_test_spend", "LEVQOR_STRIPE_API="+fs.URL,
		"LEVQOR_JWT_SECRET=replica test secret of at least 32 bytes", "LEVQOR_DSAR_KEY=replica test pseudonymisation key, 32+ bytes")
	start(t, append(env, "LEVQOR_DATA_DIR="+t.TempDir())...).stop() // the schema
	machines := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	round := func(limit string, wantCode int) []string {
		t.Helper()
		var wg sync.WaitGroup
		for i, data := range machines {
			// One machine's pool is a single connection, which the lock
			// that keeps runs apart must not wait for.
			conns := "LEVQOR_DATABASE_MAX_CONNS=" + strconv.Itoa(1+i)
			wg.Go(func() {
				if out, code := cliEnv(t, data, append(env, "DAILY_SPEND_LIMIT="+limit, conns), "spend"); code != wantCode {
					t.Errorf("spend with limit $%s: exit %d, want %d\n%s", limit, code, wantCode, out)
				}
			})
		}
		wg.Wait()
		return tg.sent()
	}
	// Each alert once: its title line (the forecast's, too, which early in
	// the day joins in) never twice.
	once := func(sent []string) bool {
		seen := map[string]bool{}
		for _, m := range sent {
			title, _, _ := strings.Cut(m, "\n")
			if seen[title] {
				return false
			}
			seen[title] = true
		}
		return true
	}
	round("6", 0) // 53%
	if sent := round("6", 0); countContaining(sent, "at 50% of limit") != 1 || !once(sent) {
		t.Fatalf("two rounds on three machines at 53%%: %q", sent)
	}
	if sent := round("3.5", 0); countContaining(sent, "at 80% of limit") != 1 || countContaining(sent, "at 100% of limit") != 0 || !once(sent) {
		t.Fatalf("a round at 91%%: %q", sent)
	}

	// A record file of the earlier version on a machine of its own: today's
	// 50% alert is not sent again, nor the forecast's (which from 01:00 to
	// about 12:45 UTC, $3.20 extrapolating past $6, the earlier version
	// sent and recorded too: without it in the record this test failed in
	// those hours), and the file is imported once.
	data := newData(t)
	today := time.Now().UTC().Format(time.DateOnly)
	legacy := filepath.Join(data, "spend_guard.json")
	if err := os.WriteFile(legacy, []byte(`{"day":"`+today+`","alarmed":[50],"forecast":[100]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := len(tg.sent())
	stripeOnly := append(tg.env(), "STRIPE_SECRET_KEY=sk_test_spend", "LEVQOR_STRIPE_API="+fs.URL, "DAILY_SPEND_LIMIT=6")
	if out, code := cliEnv(t, data, stripeOnly, "spend"); code != 0 {
		t.Fatalf("spend with a legacy record: exit %d\n%s", code, out)
	}
	if sent := tg.sent()[before:]; len(sent) != 0 {
		t.Fatalf("alerted again what the legacy record held: %q", sent)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("the legacy record is still in place: %v", err)
	}
	if _, err := os.Stat(legacy + ".imported"); err != nil {
		t.Fatal(err)
	}
}

// TestLatencySpikeAlerts: each API route is judged against its own
// recent latencies, with a floor on their spread (a twentieth of
// SLO_LATENCY_THRESHOLD): GET /api/me answering in tenths of a
// millisecond and logins hashing a password in tens do not alert in
// normal use, while logins queued for the one hashing slot do. Before,
// one baseline mixed every route and its spread had no floor: 300 calls
// of /api/me alerted "Latency spike on GET /api/me" with a latency of
// 0s ("baseline 0.0ms ± 0.0").
func TestLatencySpikeAlerts(t *testing.T) {
	s := start(t, "LEVQOR_RATE_LIMIT=100000/m", "LEVQOR_HASH_CONCURRENCY=1")
	expect(t, s.do("POST", "/api/auth/register", "", creds("spike@example.com", "password one")), 201, "register")
	var access string
	for range 52 { // past the route's warm-up of 50
		access, _ = login(t, s, "spike@example.com", "password one")
	}
	for range 300 {
		expect(t, s.do("GET", "/api/me", access, ""), 200, "me")
	}
	// Any alert so far must be a real spike: at least 0.3 × the 200 ms
	// SLO threshold above its route's mean (a stalled machine), never the
	// sub-millisecond wobble of a fast route.
	spikes := func() []string {
		var out []string
		for _, l := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(l, `title="Latency spike on `) {
				out = append(out, l)
			}
		}
		return out
	}
	for _, l := range spikes() {
		_, lat, _ := strings.Cut(l, "fields.Latency=")
		lat, _, _ = strings.Cut(lat, " ")
		if d, err := time.ParseDuration(lat); err != nil || d < 60*time.Millisecond {
			t.Fatalf("a latency alert in normal use: %s", l)
		}
	}
	// Nine logins at once for one hashing slot: the last waits for eight
	// hashes, far above the route's baseline.
	before := len(spikes())
	var wg sync.WaitGroup
	for range 9 {
		wg.Go(func() { s.do("POST", "/api/auth/login", "", creds("spike@example.com", "password one")) })
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := spikes(); len(got) > before && strings.Contains(got[len(got)-1], "POST /api/auth/login") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued logins raised no latency alert:\n%s", strings.Join(spikes(), "\n"))
		}
	}
}

// TestCronFailuresAlert: `backup` and `payouts` run from cron (as the
// README's crontab shows) alert when they fail, as `spend` and `slo` do;
// before, their failure reached only the command's output. A dry run
// alerts nothing.
func TestCronFailuresAlert(t *testing.T) {
	data := newData(t)
	tg := newFakeTelegram(t)
	stripe := newFakeStripe(t)
	stripe.mu.Lock()
	stripe.closed = map[string]bool{"acct_closed": true}
	stripe.mu.Unlock()
	env := append(tg.env(), "STRIPE_SECRET_KEY=sk_test_fake", "LEVQOR_STRIPE_API="+stripe.URL)
	for _, p := range []struct{ id, account string }{{"p1", "acct_open"}, {"p2", "acct_closed"}} {
		if out, code := cliEnv(t, data, env, "payouts", "partners", "add", "--id", p.id, "--account", p.account); code != 0 {
			t.Fatalf("partners add: exit %d\n%s", code, out)
		}
		if out, code := cliEnv(t, data, env, "payouts", "commissions", "add", "--partner", p.id, "--amount", "6000", "--currency", "USD", "--ref", "inv-"+p.id); code != 0 {
			t.Fatalf("commissions add: exit %d\n%s", code, out)
		}
	}
	if out, code := cliEnv(t, data, env, "payouts", "--dry-run"); code != 0 || len(tg.sent()) != 0 {
		t.Fatalf("dry run: exit %d, alerts %q\n%s", code, tg.sent(), out)
	}
	if out, code := cliEnv(t, data, env, "payouts"); code != 1 {
		t.Fatalf("payouts with a closed account: exit %d, want 1\n%s", code, out)
	}
	if sent := tg.sent(); len(sent) != 1 || !strings.Contains(sent[0], "Payouts failed") || !strings.Contains(sent[0], "No such destination") {
		t.Fatalf("payouts alerts: %q", sent)
	}

	blocked := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := cliEnv(t, data, append(env, "LEVQOR_BACKUP_DIR="+blocked), "backup"); code != 1 {
		t.Fatalf("backup into a file: exit %d, want 1\n%s", code, out)
	}
	if sent := tg.sent(); len(sent) != 2 || !strings.Contains(sent[1], "Backup failed") {
		t.Fatalf("backup alerts: %q", sent)
	}
}

// TestDoctorChecksAlerts: doctor asks Telegram (getChat, no message)
// whether the bot token and chat work, and Stripe (the platform's own
// account) whether STRIPE_SECRET_KEY does; before, a wrong token, chat id
// or key showed only when an alert, a spend check or a payout failed.
func TestDoctorChecksAlerts(t *testing.T) {
	data := newData(t)
	backupOnce(t, data) // every other check passes
	tg := newFakeTelegram(t)
	stripe := newFakeStripe(t)
	for _, tc := range []struct {
		name string
		env  []string
		exit int
		say  string
	}{
		{"working", tg.env(), 0, "PASS  alerts (Telegram)"},
		{"unknown chat", append(tg.env(), "TELEGRAM_CHAT_ID=-42"), 1, "chat not found"},
		{"wrong token", append(tg.env(), "TELEGRAM_BOT_TOKEN=987654321:AAWrongTokenForLevqorServerTests"), 1, "Unauthorized"},
		{"stripe key", append(tg.env(), "STRIPE_SECRET_KEY=sk_test_doctor", "LEVQOR_STRIPE_API="+stripe.URL), 0, "PASS  Stripe key"},
		{"wrong stripe key", append(tg.env(), "STRIPE_SECRET_KEY=rk_live_AAWrongToken", "LEVQOR_STRIPE_API="+stripe.URL), 1, "FAIL  Stripe key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := cliEnv(t, data, tc.env, "doctor")
			if code != tc.exit || !strings.Contains(out, tc.say) || (tc.exit == 1 && !strings.Contains(out, "FAIL  ")) {
				t.Fatalf("doctor: exit %d, want %d and %q\n%s", code, tc.exit, tc.say, out)
			}
			if strings.Contains(out, "AAWrongToken") || strings.Contains(out, fakeBotToken) {
				t.Fatalf("a bot token in doctor's output:\n%s", out)
			}
		})
	}
	if sent := tg.sent(); len(sent) != 0 {
		t.Fatalf("doctor sent alerts: %q", sent)
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
