package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dashboardJSON is the part of /dashboard.json the tests read.
type dashboardJSON struct {
	Costs struct {
		State, Error string
		Report       struct {
			Totals map[string]struct {
				Costs, Revenue, Net struct{ Amount int64 }
			}
		}
		Days []json.RawMessage
	}
	Spend struct {
		State, Error, Paused string
		Check                *struct{ Spent struct{ Amount int64 } }
	}
	SLO struct {
		State        string
		Availability struct{ Events uint64 }
		Percentiles  map[string]int64 `json:"percentiles_us"`
		Series       []struct{ Count int64 }
	}
	Alerts struct {
		Recent []struct {
			Title     string
			Delivered bool
		}
	}
	Backups struct {
		State             string
		Count             int
		Verified          bool
		Newest, Elsewhere string
	}
	Payouts struct {
		State  string
		Totals []struct {
			Currency string
			Unpaid   int64
		}
		Onboarding []string `json:"partners_awaiting_onboarding"`
	}
}

func opsGet(t *testing.T, ops, path string) (int, string) {
	t.Helper()
	return testhttpGet(t, "http://"+ops+path, "")
}

// TestDashboard: on the ops listener, /dashboard.json holds every panel,
// and /dashboard renders in headless Chromium (light and dark) with no
// script error and no CSP violation; screenshots are saved as artefacts.
func TestDashboard(t *testing.T) {
	bin := chromium(t)
	fs := newFakeStripe(t)
	fs.setCosts(true, false, false)
	ops, data := freeAddr(t), t.TempDir()
	env := []string{"LEVQOR_OPS_ADDR=" + ops, "LEVQOR_DATA_DIR=" + data, "LEVQOR_INFRA_MONTHLY=300",
		"STRIPE_SECRET_KEY=sk_test_dash", "LEVQOR_STRIPE_API=" + fs.URL, "STRIPE_WEBHOOK_SECRET=" + webhookSecret}
	s := start(t, env...)

	// Something for every panel: a backup, traffic, an alert (refresh
	// token reuse), a partner still onboarding with a commission.
	if out, code := cliEnv(t, data, env, "backup"); code != 0 {
		t.Fatalf("backup: %d\n%s", code, out)
	}
	expect(t, s.do("POST", "/api/auth/register", "", creds("ops@example.com", "ops password 1")), 201, "register")
	access, refresh := login(t, s, "ops@example.com", "ops password 1")
	for range 20 {
		expect(t, s.do("GET", "/api/me", access, ""), 200, "me")
	}
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 200, "refresh")
	time.Sleep(5100 * time.Millisecond) // past the refresh grace period: the next use is a reuse
	expect(t, s.do("POST", "/api/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, refresh)), 401, "reuse")
	_, _ = login(t, s, "ops@example.com", "ops password 1")
	ptok, _ := login(t, s, "ops@example.com", "ops password 1")
	r := s.do("POST", "/api/partners", ptok, "")
	expect(t, r, 201, "partner")
	code := r.json(t)["referral_code"].(string)
	expect(t, s.do("POST", "/api/auth/register", "", fmt.Sprintf(`{"email":"buyer@example.com","password":"buyer password","ref":%q}`, code)), 201, "referred")
	if st, _ := signedEvent(t, s, stripeEvent("evt_1", "invoice.paid", invoice("in_1", "buyer@example.com", 25000, "cus_1", ""))); st != 200 {
		t.Fatal("invoice.paid")
	}

	st, body := opsGet(t, ops, "/dashboard.json")
	if st != 200 {
		t.Fatalf("dashboard.json: %d %s", st, body)
	}
	var d dashboardJSON
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	usd := d.Costs.Report.Totals["USD"]
	// 30 days of $3.20 fees and $100 revenue, plus the prorated $300 a month.
	if d.Costs.State != "ok" || len(d.Costs.Days) != 30 || usd.Revenue.Amount < 29*10000 || usd.Costs.Amount < 29*320+28000 {
		t.Fatalf("costs: %+v", d.Costs)
	}
	if d.Spend.State != "ok" || d.Spend.Check == nil || d.Spend.Paused != "no" {
		t.Fatalf("spend: %+v", d.Spend)
	}
	if d.SLO.Availability.Events < 20 || d.SLO.Percentiles["p99"] <= 0 || d.SLO.Series[len(d.SLO.Series)-1].Count == 0 {
		t.Fatalf("slo: %+v", d.SLO)
	}
	if len(d.Alerts.Recent) == 0 || d.Alerts.Recent[0].Title != "Refresh token reuse detected" || !d.Alerts.Recent[0].Delivered {
		t.Fatalf("alerts: %+v", d.Alerts)
	}
	if d.Backups.State != "ok" || d.Backups.Count != 1 || !d.Backups.Verified {
		t.Fatalf("backups: %+v", d.Backups)
	}
	if d.Payouts.State != "ok" || len(d.Payouts.Onboarding) != 1 || len(d.Payouts.Totals) != 1 || d.Payouts.Totals[0].Unpaid != 5000 {
		t.Fatalf("payouts: %+v", d.Payouts)
	}
	expect(t, s.do("GET", "/dashboard", "", ""), 404, "dashboard on the public port")

	// In the browser.
	dom := runChromium(t, bin, "--virtual-time-budget=3000", "--dump-dom", "http://"+ops+"/dashboard")
	for _, want := range []string{`data-script-ran="yes"`, `data-page-errors="0"`, "refreshes every 30 s", "Refresh token reuse detected", "<svg", "stripe"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the dashboard DOM lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, `data-panel-state="unknown"`) {
		t.Fatalf("a panel is unknown although every source answered:\n%s", dom)
	}
	artifacts := os.Getenv("LEVQOR_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(os.TempDir(), "levqor-artifacts")
	}
	_ = os.MkdirAll(artifacts, 0o755)
	var shots [][]byte
	for _, mode := range []struct{ name, flag string }{{"light", "--blink-settings=preferredColorScheme=1"}, {"dark", "--force-dark-mode"}} {
		shot := filepath.Join(artifacts, "dashboard-"+mode.name+".png")
		runChromium(t, bin, mode.flag, "--window-size=1280,1900", "--hide-scrollbars", "--virtual-time-budget=2000", "--screenshot="+shot, "http://"+ops+"/dashboard")
		b, err := os.ReadFile(shot)
		if err != nil || len(b) < 10_000 {
			t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
		}
		shots = append(shots, b)
		t.Logf("screenshot saved to %s", shot)
	}
	if bytes.Equal(shots[0], shots[1]) {
		t.Fatal("the light and dark screenshots are identical")
	}
	time.Sleep(500 * time.Millisecond) // CSP reports are posted asynchronously
	if _, m := opsGet(t, ops, "/metrics"); strings.Contains(m, "levqor_csp_reports_total{") {
		t.Fatalf("CSP violations reported:\n%s", grepLines(m, "csp"))
	}
}

// TestDashboardUnknown: a panel whose source fails says "unknown", never
// zero.
func TestDashboardUnknown(t *testing.T) {
	fs := newFakeStripe(t)
	fs.setCosts(false, false, true)
	ops, data := freeAddr(t), t.TempDir()
	notDir := filepath.Join(data, "not-a-directory")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "LEVQOR_OPS_ADDR="+ops, "LEVQOR_DATA_DIR="+data, "LEVQOR_BACKUP_DIR="+notDir,
		"STRIPE_SECRET_KEY=sk_test_dash", "LEVQOR_STRIPE_API="+fs.URL)
	st, body := opsGet(t, ops, "/dashboard.json")
	var d dashboardJSON
	if st != 200 || json.Unmarshal([]byte(body), &d) != nil {
		t.Fatalf("dashboard.json: %d %s", st, body)
	}
	if d.Costs.State != "unknown" || !strings.Contains(d.Costs.Error, "stripe") {
		t.Fatalf("costs with Stripe failing: %+v", d.Costs)
	}
	if d.Spend.State != "unknown" || d.Spend.Error == "" {
		t.Fatalf("spend with Stripe failing: %+v", d.Spend)
	}
	if d.Backups.State != "unknown" || d.Backups.Count != 0 {
		t.Fatalf("backups with a broken directory: %+v", d.Backups)
	}
	_, page := opsGet(t, ops, "/dashboard")
	for _, id := range []string{"costs", "spend", "backups"} {
		i := strings.Index(page, `id="`+id+`"`)
		j := strings.Index(page[i:], "</section>")
		if !strings.Contains(page[i:i+j], `data-panel-state="unknown"`) || strings.Contains(page[i:i+j], "$0.00") {
			t.Fatalf("panel %s does not say unknown:\n%s", id, page[i:i+j])
		}
	}
}
