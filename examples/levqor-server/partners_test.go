package main_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/internal/testhttp"
	"github.com/levqor/levqor/payout"
)

const webhookSecret = "whsec_test_partner_programme_secret"

// connectWebhookSecret signs the events of the Connect endpoint (a
// partner's account.updated), which Stripe sends to no other endpoint.
const connectWebhookSecret = "whsec_test_connect_endpoint_secret"

// stripeEvent is an event body as Stripe sends it, created now.
func stripeEvent(id, typ string, object map[string]any) string {
	return stripeEventAt(id, typ, object, time.Now())
}

// stripeEventAt is an event created at the given time.
func stripeEventAt(id, typ string, object map[string]any, created time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2025-09-30.clover", "created": created.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": object},
	})
	return string(b)
}

// stripeSignature signs body the way Stripe does: t=<unix>,v1=<hex
// HMAC-SHA256 of "<t>.<body>"> for each secret.
func stripeSignature(body string, at time.Time, secrets ...string) string {
	parts := []string{fmt.Sprintf("t=%d", at.Unix())}
	for _, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		fmt.Fprintf(m, "%d.%s", at.Unix(), body)
		parts = append(parts, "v1="+hex.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(parts, ",")
}

func postEvent(t *testing.T, s *server, body, sig string) (int, string) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if sig != "" {
		h.Set("Stripe-Signature", sig)
	}
	res, b := testhttp.Do(t, "POST", s.url+"/webhooks/stripe", body, h)
	return res.StatusCode, b
}

func signedEvent(t *testing.T, s *server, body string) (int, string) {
	t.Helper()
	return postEvent(t, s, body, stripeSignature(body, time.Now(), webhookSecret))
}

func invoice(id, email string, amount int64, customer, intent string) map[string]any {
	inv := map[string]any{"id": id, "object": "invoice", "amount_paid": amount, "currency": "usd",
		"customer": customer, "customer_email": email, "status": "paid", "metadata": map[string]string{}}
	if intent != "" {
		inv["payments"] = map[string]any{"object": "list", "has_more": false, "data": []any{
			map[string]any{"object": "invoice_payment", "payment": map[string]any{"type": "payment_intent", "payment_intent": intent}},
		}}
	}
	return inv
}

// partnerBalance reads GET /api/partners/me.
func partnerMe(t *testing.T, s *server, token string) map[string]any {
	t.Helper()
	r := s.do("GET", "/api/partners/me", token, "")
	expect(t, r, 200, "GET /api/partners/me")
	return r.json(t)
}

func unpaidUSD(t *testing.T, me map[string]any) float64 {
	t.Helper()
	for _, b := range me["balances"].([]any) {
		if b := b.(map[string]any); b["currency"] == "USD" {
			return b["unpaid"].(float64)
		}
	}
	return 0
}

// TestPartnerProgramme: a partner signs up through Stripe Connect, a
// referred user registers, a signed invoice.paid arrives twice and one
// commission is recorded, a refund reverses it, payouts pays nothing
// until the account is ready and then transfers exactly once; bad
// signatures, stale timestamps and unknown codes change nothing.
func TestPartnerProgramme(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { partnerProgramme(t) })
	t.Run("postgres", func(t *testing.T) { partnerProgramme(t, "LEVQOR_DATABASE_URL="+pgtest.NewDatabase(t)) })
}

func partnerProgramme(t *testing.T, extraEnv ...string) {
	fs := newFakeStripe(t)
	data := t.TempDir()
	env := append([]string{"STRIPE_SECRET_KEY=sk_test_partner", "LEVQOR_STRIPE_API=" + fs.URL,
		"STRIPE_WEBHOOK_SECRET=" + webhookSecret + ", " + connectWebhookSecret, "LEVQOR_DATA_DIR=" + data}, extraEnv...)
	s := start(t, env...)

	// A partner signs up.
	expect(t, s.do("POST", "/api/auth/register", "", creds("partner@example.com", "partner password")), 201, "register partner")
	ptok, _ := login(t, s, "partner@example.com", "partner password")
	r := s.do("POST", "/api/partners", ptok, "")
	expect(t, r, 201, "POST /api/partners")
	p := r.json(t)
	code, _ := p["referral_code"].(string)
	if code == "" || p["partner_id"] == "" || !strings.HasPrefix(p["onboarding_url"].(string), "https://connect.stripe.com/") {
		t.Fatalf("partner: %v", p)
	}
	expect(t, s.do("POST", "/api/partners", ptok, ""), 409, "second sign-up")
	if len(fs.accounts) != 1 || fs.accounts[0]["email"] != "partner@example.com" {
		t.Fatalf("Stripe accounts: %v", fs.accounts)
	}
	account := fs.accounts[0]["id"].(string)
	expect(t, s.do("POST", "/api/partners", "", ""), 401, "sign-up without a token")
	partnerOnboarding(t, s, fs, ptok, p["onboarding_url"].(string))

	// A referred user, and one with an unknown code (answered alike).
	ref := func(email, code string) string {
		return fmt.Sprintf(`{"email":%q,"password":"buyer password","ref":%q}`, email, code)
	}
	r1 := s.do("POST", "/api/auth/register", "", ref("buyer@example.com", code))
	r2 := s.do("POST", "/api/auth/register", "", ref("other@example.com", "no-such-code"))
	expect(t, r1, 201, "register with a code")
	expect(t, r2, 201, "register with an unknown code")
	if r1.body != strings.Replace(r2.body, "other@", "buyer@", 1) {
		t.Fatalf("an unknown code is answered differently: %q vs %q", r1.body, r2.body)
	}

	// invoice.paid, delivered twice, and again under another event id.
	paid := stripeEvent("evt_paid_1", "invoice.paid", invoice("in_1", "Buyer@Example.com", 30000, "cus_buyer", "pi_1"))
	for i := range 2 {
		if st, body := signedEvent(t, s, paid); st != 200 {
			t.Fatalf("invoice.paid #%d: %d %s", i, st, body)
		}
	}
	if st, body := signedEvent(t, s, stripeEvent("evt_paid_1_again", "invoice.paid", invoice("in_1", "buyer@example.com", 30000, "cus_buyer", "pi_1"))); st != 200 {
		t.Fatalf("invoice.paid under another id: %d %s", st, body)
	}
	// An invoice of a user nobody referred earns nothing.
	if st, _ := signedEvent(t, s, stripeEvent("evt_other", "invoice.paid", invoice("in_o", "other@example.com", 90000, "cus_other", ""))); st != 200 {
		t.Fatalf("unreferred invoice: %d", st)
	}
	me := partnerMe(t, s, ptok)
	if got := unpaidUSD(t, me); got != 6000 || len(me["commissions"].([]any)) != 1 || me["payouts_enabled"] != false {
		t.Fatalf("after invoice.paid: %v", me)
	}

	// Forged, stale, unsigned, oversized, unknown type: nothing recorded.
	forged := stripeEvent("evt_forged", "invoice.paid", invoice("in_f", "buyer@example.com", 900000, "cus_buyer", ""))
	for name, sig := range map[string]string{
		"wrong secret": stripeSignature(forged, time.Now(), "whsec_attacker_secret_123456"),
		"stale":        stripeSignature(forged, time.Now().Add(-10*time.Minute), webhookSecret),
		"unsigned":     "",
		"garbage":      "t=abc,v1=zz",
	} {
		if st, _ := postEvent(t, s, forged, sig); st != 400 {
			t.Fatalf("%s: status %d, want 400", name, st)
		}
	}
	big := stripeEvent("evt_big", "invoice.paid", map[string]any{"id": "in_big", "pad": strings.Repeat("x", 1100<<10)})
	if st, _ := signedEvent(t, s, big); st != 413 {
		t.Fatalf("1.1 MiB event: %d, want 413", st)
	}
	if st, body := signedEvent(t, s, stripeEvent("evt_unknown", "customer.created", map[string]any{"id": "cus_x"})); st != 200 || !strings.Contains(body, "ignored") {
		t.Fatalf("unknown type: %d %s", st, body)
	}
	if got := unpaidUSD(t, partnerMe(t, s, ptok)); got != 6000 {
		t.Fatalf("rejected events changed the balance: %v", got)
	}

	// Not onboarded yet: payouts pays nothing.
	out, exit := cliEnv(t, data, env, "payouts")
	if exit != 0 || !strings.Contains(out, "not ready") || len(fs.paid()) != 0 {
		t.Fatalf("payouts before onboarding: exit %d\n%s\npaid %v", exit, out, fs.paid())
	}
	// account.updated from the Connect endpoint (its own secret), signed
	// while that secret is being rolled (two v1); one signed with neither
	// endpoint's secret is refused.
	upd := stripeEvent("evt_acct", "account.updated", map[string]any{"id": account, "object": "account", "payouts_enabled": true})
	if st, _ := postEvent(t, s, upd, stripeSignature(upd, time.Now(), "whsec_some_other_endpoint_secret")); st != 400 {
		t.Fatalf("account.updated signed with an unknown secret: %d", st)
	}
	if st, body := postEvent(t, s, upd, stripeSignature(upd, time.Now(), "whsec_old_secret_being_rolled", connectWebhookSecret)); st != 200 {
		t.Fatalf("account.updated: %d %s", st, body)
	}
	// An older account.updated (still onboarding), delivered late, is ignored.
	late := stripeEventAt("evt_acct_old", "account.updated", map[string]any{"id": account, "object": "account", "payouts_enabled": false}, time.Now().Add(-time.Hour))
	if st, body := signedEvent(t, s, late); st != 200 {
		t.Fatalf("late account.updated: %d %s", st, body)
	}

	// A full refund reverses the unpaid commission.
	refund := stripeEvent("evt_refund", "charge.refunded", map[string]any{"id": "ch_1", "object": "charge", "amount": 30000,
		"amount_refunded": 30000, "currency": "usd", "customer": "cus_buyer", "payment_intent": "pi_1", "refunded": true})
	for range 2 {
		if st, body := signedEvent(t, s, refund); st != 200 {
			t.Fatalf("charge.refunded: %d %s", st, body)
		}
	}
	me = partnerMe(t, s, ptok)
	if got := unpaidUSD(t, me); got != 0 || me["payouts_enabled"] != true {
		t.Fatalf("after the refund: %v", me)
	}
	expect(t, s.do("POST", "/api/partners/onboarding", ptok, ""), 409, "a new onboarding link once payouts are enabled")
	if out, exit := cliEnv(t, data, env, "payouts"); exit != 0 || len(fs.paid()) != 0 {
		t.Fatalf("payouts after the refund paid: exit %d\n%s\npaid %v", exit, out, fs.paid())
	}

	// The next invoice reaches the minimum: paid exactly once.
	if st, _ := signedEvent(t, s, stripeEvent("evt_paid_2", "invoice.paid", invoice("in_2", "buyer@example.com", 30000, "cus_buyer", "pi_2"))); st != 200 {
		t.Fatal("second invoice")
	}
	for i := range 2 {
		if out, exit := cliEnv(t, data, env, "payouts"); exit != 0 {
			t.Fatalf("payouts #%d: exit %d\n%s", i, exit, out)
		}
	}
	if got := fs.paid(); len(got) != 1 || got[account] != 6000 {
		t.Fatalf("transfers: %v, want %s: 6000 once", got, account)
	}
	me = partnerMe(t, s, ptok)
	pays := me["payouts"].([]any)
	if len(pays) != 1 || pays[0].(map[string]any)["amount"] != float64(6000) || unpaidUSD(t, me) != 0 {
		t.Fatalf("after the payout: %v", me)
	}
	if len(me["commissions"].([]any)) != 3 { // in_1, its reversal, in_2
		t.Fatalf("commissions: %v", me["commissions"])
	}
	// Referred customers' invoices and identities stay out of the partner's view.
	if body := s.do("GET", "/api/partners/me", ptok, "").body; strings.Contains(body, "in_1") || strings.Contains(body, "in_2") || strings.Contains(body, "buyer@") || strings.Contains(body, "cus_buyer") {
		t.Fatalf("partner view shows the customer: %s", body)
	}
	// Pages.
	r = s.do("GET", "/api/partners/me?limit=1&offset=1", ptok, "")
	expect(t, r, 200, "page 2")
	if cs := r.json(t)["commissions"].([]any); len(cs) != 1 {
		t.Fatalf("page of 1: %v", cs)
	}
	expect(t, s.do("GET", "/api/partners/me?limit=1000", ptok, ""), 400, "limit over 100")
	// A user who is not a partner.
	btok, _ := login(t, s, "buyer@example.com", "buyer password")
	expect(t, s.do("GET", "/api/partners/me", btok, ""), 404, "not a partner")
	expect(t, s.do("POST", "/api/partners/onboarding", btok, ""), 404, "an onboarding link for someone not a partner")

	// Data-subject exports: the partner sees their code, commissions and
	// when referrals happened; the buyer sees that they were referred and
	// their invoices; neither sees the other.
	partnerID := p["partner_id"].(string)
	export := func(token string) (map[string]int, string) {
		t.Helper()
		r := s.do("POST", "/api/user/export", token, "")
		expect(t, r, 200, "export")
		var doc struct {
			Summary map[string]int `json:"summary"`
		}
		if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Summary, r.body
	}
	sum, body := export(ptok)
	if sum["referral_code"] != 1 || sum["referred_users"] != 1 || sum["commissions"] != 2 || sum["commission_reversals"] != 1 || sum["payouts"] != 1 ||
		sum["commissioned_invoices"] != 2 || !strings.Contains(body, code) || strings.Contains(body, "buyer@example.com") {
		t.Fatalf("partner export %v:\n%s", sum, body)
	}
	sum, body = export(btok)
	if sum["referred_by"] != 1 || sum["referred_invoices"] != 2 || strings.Contains(body, partnerID) || strings.Contains(body, "partner@example.com") || strings.Contains(body, code) {
		t.Fatalf("buyer export %v:\n%s", sum, body)
	}

	// The partner erases their account: the referral link goes with it,
	// so the buyer's next invoice earns no one anything.
	expect(t, s.do("DELETE", "/api/user", ptok, ""), 204, "partner erasure")
	if st, body := signedEvent(t, s, stripeEvent("evt_paid_3", "invoice.paid", invoice("in_3", "buyer@example.com", 30000, "cus_buyer", "pi_3"))); st != 200 || !strings.Contains(body, "handled") {
		t.Fatalf("invoice after the partner's erasure: %d %s", st, body)
	}
	if sum, _ := export(btok); sum["referred_by"] != 0 || sum["referred_invoices"] != 2 {
		t.Fatalf("buyer export after the partner's erasure: %v", sum)
	}
	// The ledger keeps the partner's accounting under a pseudonym.
	for _, what := range []string{"partners", "commissions"} {
		out, code := cliEnv(t, data, env, "payouts", what, "list", "--json")
		if code != 0 || strings.Contains(out, partnerID) || strings.Contains(out, account) || !strings.Contains(out, "hmac:") {
			t.Fatalf("payouts %s list after erasure (exit %d):\n%s", what, code, out)
		}
	}
	if body := s.do("GET", "/metrics", "", "").body; !strings.Contains(body, `levqor_stripe_webhook_events_total{outcome="rejected"} 5`) {
		t.Fatalf("webhook metrics:\n%s", grepLines(body, "webhook"))
	}
}

// partnerOnboarding: a partner who left Stripe's form, or whose link
// expired (links work once, for minutes), gets a new link, and the pages
// Stripe sends them back to are served. Before, both pages were 404 and
// nothing made a second link (POST /api/partners answers 409): such a
// partner could never finish onboarding, so was never paid.
func partnerOnboarding(t *testing.T, s *server, fs *fakeStripe, token, first string) {
	t.Helper()
	r := s.do("POST", "/api/partners/onboarding", token, "")
	expect(t, r, 200, "a new onboarding link")
	if u, _ := r.json(t)["onboarding_url"].(string); u == first || !strings.HasPrefix(u, "https://connect.stripe.com/") {
		t.Fatalf("new onboarding link %q (the first was %q)", u, first)
	}
	expect(t, s.do("POST", "/api/partners/onboarding", "", ""), 401, "an onboarding link without a token")
	back, expired := fs.linkURLs()
	for _, tc := range []struct{ url, id string }{{back, "onboarding-returned"}, {expired, "onboarding-expired"}} {
		u, err := url.Parse(tc.url)
		if err != nil || u.Host == "" {
			t.Fatalf("Stripe was given %q", tc.url)
		}
		page := s.do("GET", u.RequestURI(), "", "")
		if page.status != 200 || !strings.Contains(page.body, `id="`+tc.id+`"`) || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s (given to Stripe as %s): %d %.300s", u.RequestURI(), tc.url, page.status, page.body)
		}
	}
}

// TestPartnerProgrammeUnconfigured: without Stripe keys the endpoints say
// so (503), and a webhook is never accepted unverified.
// TestPayoutsLearnReadinessFromStripe: a partner who finished Stripe's
// onboarding is paid by the next payouts run though the account.updated
// event never arrived (Stripe sends a connected account's events only to
// a Connect webhook endpoint, which a setup with one endpoint lacks):
// the run asks Stripe about each partner owed a payout but not ready.
// Before, such a partner stayed "not ready", unpaid, for good. A partner
// still onboarding stays unpaid, and a dry run asks Stripe nothing.
func TestPayoutsLearnReadinessFromStripe(t *testing.T) {
	fs := newFakeStripe(t)
	data := t.TempDir()
	env := []string{"STRIPE_SECRET_KEY=sk_test_partner", "LEVQOR_STRIPE_API=" + fs.URL}
	s := start(t, append(env, "LEVQOR_DATA_DIR="+data)...)
	var partners []string
	for _, email := range []string{"done@example.com", "later@example.com"} {
		expect(t, s.do("POST", "/api/auth/register", "", creds(email, "partner password")), 201, "register")
		tok, _ := login(t, s, email, "partner password")
		r := s.do("POST", "/api/partners", tok, "")
		expect(t, r, 201, "POST /api/partners")
		partners = append(partners, r.json(t)["partner_id"].(string))
	}
	s.stop()
	for _, p := range partners {
		if out, code := cliEnv(t, data, env, "payouts", "commissions", "add", "--partner", p, "--amount", "6000", "--currency", "USD", "--ref", "inv-"+p); code != 0 {
			t.Fatalf("commissions add: exit %d\n%s", code, out)
		}
	}
	fs.finishOnboarding(fs.accounts[0]["id"].(string)) // the first partner finished; no event arrives

	if out, code := cliEnv(t, data, env, "payouts", "--dry-run"); code != 0 || fs.accountsRead() != 0 {
		t.Fatalf("dry run: exit %d, %d account reads\n%s", code, fs.accountsRead(), out)
	}
	out, code := cliEnv(t, data, env, "payouts")
	if code != 0 || !strings.Contains(out, "partner "+partners[0]+" is ready at Stripe") {
		t.Fatalf("payouts: exit %d\n%s", code, out)
	}
	if paid := fs.paid(); len(paid) != 1 || paid[fs.accounts[0]["id"].(string)] != 6000 {
		t.Fatalf("paid at Stripe: %v, want the first partner's 6000 only", paid)
	}
	if !strings.Contains(out, "not ready") {
		t.Fatalf("the partner still onboarding is not reported:\n%s", out)
	}
}

func TestPartnerProgrammeUnconfigured(t *testing.T) {
	s := start(t)
	expect(t, s.do("POST", "/api/auth/register", "", creds("p@example.com", "partner password")), 201, "register")
	tok, _ := login(t, s, "p@example.com", "partner password")
	expect(t, s.do("POST", "/api/partners", tok, ""), 503, "sign-up without STRIPE_SECRET_KEY")
	expect(t, s.do("POST", "/api/partners/onboarding", tok, ""), 503, "an onboarding link without STRIPE_SECRET_KEY")
	body := stripeEvent("evt_1", "invoice.paid", invoice("in_1", "p@example.com", 100, "", ""))
	if st, _ := postEvent(t, s, body, stripeSignature(body, time.Now(), webhookSecret)); st != 503 {
		t.Fatalf("webhook without STRIPE_WEBHOOK_SECRET: %d", st)
	}
}

// TestPartnerSignUpRacingErasure: the account is erased while its
// partner sign-up waits for Stripe. The sign-up then fails (401), leaves
// no partner row or referral code of the person, and deletes the Connect
// account it made, so Stripe keeps no copy of the erased email for us.
func TestPartnerSignUpRacingErasure(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		data := t.TempDir()
		partnerSignUpRacingErasure(t, data, func() *sql.DB { return openDB(t, data) }, func(q string) string { return q })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		partnerSignUpRacingErasure(t, t.TempDir(), func() *sql.DB {
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}, sqldialect.Postgres.Rebind, "LEVQOR_DATABASE_URL="+url)
	})
}

func partnerSignUpRacingErasure(t *testing.T, data string, openDB func() *sql.DB, q func(string) string, extraEnv ...string) {
	fs := newFakeStripe(t)
	env := append([]string{"STRIPE_SECRET_KEY=sk_test_race", "LEVQOR_STRIPE_API=" + fs.URL, "LEVQOR_DATA_DIR=" + data}, extraEnv...)
	s := start(t, env...)
	expect(t, s.do("POST", "/api/auth/register", "", creds("racer@example.com", "racer password")), 201, "register")
	tok, _ := login(t, s, "racer@example.com", "racer password")
	db := openDB()
	defer db.Close()
	var id string
	if err := db.QueryRow(q(`SELECT id FROM users WHERE email = ?`), "racer@example.com").Scan(&id); err != nil {
		t.Fatal(err)
	}

	fs.mu.Lock()
	fs.holdAccounts, fs.accountMade = make(chan struct{}), make(chan string, 1)
	hold, made := fs.holdAccounts, fs.accountMade
	fs.mu.Unlock()
	signUp := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.url+"/api/partners", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			signUp <- 0
			return
		}
		res.Body.Close()
		signUp <- res.StatusCode
	}()
	var account string
	select {
	case account = <-made:
	case <-time.After(10 * time.Second):
		t.Fatal("the sign-up never asked Stripe for an account")
	}
	expect(t, s.do("DELETE", "/api/user", tok, ""), 204, "erasure during the sign-up")
	fs.mu.Lock()
	close(hold)
	fs.holdAccounts = nil
	deletedBefore := len(fs.deleted)
	fs.mu.Unlock()
	if st := <-signUp; st != 401 {
		t.Fatalf("sign-up of an erased account answered %d, want 401", st)
	}
	for _, table := range []string{"partner_codes WHERE user_id = ?", "levqor_partners WHERE id = ?", "users WHERE id = ?"} {
		var n int
		if err := db.QueryRow(q(`SELECT COUNT(*) FROM `+table), id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d rows in %s after the erasure", n, table)
		}
	}
	fs.mu.Lock()
	deleted := slices.Clone(fs.deleted)
	fs.mu.Unlock()
	if deletedBefore != 0 || len(deleted) != 1 || deleted[0] != account {
		t.Fatalf("Stripe accounts deleted: %v (%d before the sign-up's answer), want [%s]", deleted, deletedBefore, account)
	}
}

// TestReferralRacingPartnerErasure: a write that links someone to a
// partner commits while the partner erases their account — a
// registration naming the partner's referral code, and the commissioned
// invoice of a referred user. No row with the partner's own id may
// outlive the erasure. PostgreSQL only: SQLite runs write transactions one
// at a time, so the two cannot interleave there. A trigger holds the write
// inside its statement, so the erasure runs in that gap.
func TestReferralRacingPartnerErasure(t *testing.T) {
	for _, tc := range []struct {
		name, table string // the held insert
		// write starts the racing write; code is the partner's referral code.
		write func(s *server, code string) (*http.Response, error)
	}{
		{"registration", "referrals", func(s *server, code string) (*http.Response, error) {
			return http.Post(s.url+"/api/auth/register", "application/json",
				strings.NewReader(fmt.Sprintf(`{"email":"late@example.com","password":"buyer password","ref":%q}`, code)))
		}},
		{"commissioned invoice", "referral_invoices", func(s *server, _ string) (*http.Response, error) {
			body := stripeEvent("evt_paid_race", "invoice.paid", invoice("in_race", "buyer@example.com", 10000, "cus_buyer", "pi_race"))
			req, _ := http.NewRequest("POST", s.url+"/webhooks/stripe", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Stripe-Signature", stripeSignature(body, time.Now(), webhookSecret))
			return http.DefaultClient.Do(req)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			fs := newFakeStripe(t)
			s := start(t, "STRIPE_SECRET_KEY=sk_test_race", "LEVQOR_STRIPE_API="+fs.URL, "STRIPE_WEBHOOK_SECRET="+webhookSecret,
				"LEVQOR_DATA_DIR="+t.TempDir(), "LEVQOR_DATABASE_URL="+url)
			expect(t, s.do("POST", "/api/auth/register", "", creds("partner@example.com", "partner password")), 201, "register partner")
			ptok, _ := login(t, s, "partner@example.com", "partner password")
			r := s.do("POST", "/api/partners", ptok, "")
			expect(t, r, 201, "POST /api/partners")
			partnerID, code := r.json(t)["partner_id"].(string), r.json(t)["referral_code"].(string)
			expect(t, s.do("POST", "/api/auth/register", "", fmt.Sprintf(`{"email":"buyer@example.com","password":"buyer password","ref":%q}`, code)), 201, "register buyer")

			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{
				`CREATE FUNCTION hold_insert() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$ LANGUAGE plpgsql`,
				`CREATE TRIGGER hold_insert BEFORE INSERT ON ` + tc.table + ` FOR EACH ROW EXECUTE FUNCTION hold_insert()`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			written := make(chan int, 1)
			go func() {
				res, err := tc.write(s, code)
				if err != nil {
					written <- 0
					return
				}
				res.Body.Close()
				written <- res.StatusCode
			}()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				var n int
				if err := db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'INSERT INTO ' || $1 || ' %'`, tc.table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the racing write never reached its insert into %s", tc.table)
				}
			}
			expect(t, s.do("DELETE", "/api/user", ptok, ""), 204, "partner erasure during the write")
			if st := <-written; st != 201 && st != 200 {
				t.Fatalf("the racing write answered %d", st)
			}
			for _, table := range []string{"referrals", "referral_invoices"} {
				var n int
				if err := db.QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE partner_id = $1`, partnerID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Fatalf("%d rows of %s name the erased partner's id", n, table)
				}
			}
		})
	}
}

// TestErasedPartnerIsNotPaid: a partner erased with an unpaid balance
// over the minimum. The ledger keeps the balance under a pseudonym, whose
// "account" is no Stripe account: payouts must not try to pay it (Stripe
// would refuse every attempt, and every weekly run would fail).
func TestErasedPartnerIsNotPaid(t *testing.T) {
	fs := newFakeStripe(t)
	data := t.TempDir()
	ops := freeAddr(t)
	env := []string{"STRIPE_SECRET_KEY=sk_test_erased", "LEVQOR_STRIPE_API=" + fs.URL, "STRIPE_WEBHOOK_SECRET=" + webhookSecret, "LEVQOR_DATA_DIR=" + data,
		"LEVQOR_OPS_ADDR=" + ops}
	s := start(t, env...)
	expect(t, s.do("POST", "/api/auth/register", "", creds("partner@example.com", "partner password")), 201, "register partner")
	ptok, _ := login(t, s, "partner@example.com", "partner password")
	r := s.do("POST", "/api/partners", ptok, "")
	expect(t, r, 201, "POST /api/partners")
	code := r.json(t)["referral_code"].(string)
	account := fs.accounts[0]["id"].(string)
	if st, body := signedEvent(t, s, stripeEvent("evt_ready", "account.updated", map[string]any{"id": account, "object": "account", "payouts_enabled": true})); st != 200 {
		t.Fatalf("account.updated: %d %s", st, body)
	}
	expect(t, s.do("POST", "/api/auth/register", "", fmt.Sprintf(`{"email":"buyer@example.com","password":"buyer password","ref":%q}`, code)), 201, "register buyer")
	if st, body := signedEvent(t, s, stripeEvent("evt_paid", "invoice.paid", invoice("in_1", "buyer@example.com", 30000, "cus_buyer", "pi_1"))); st != 200 {
		t.Fatalf("invoice.paid: %d %s", st, body)
	}
	if got := unpaidUSD(t, partnerMe(t, s, ptok)); got != 6000 {
		t.Fatalf("unpaid before the erasure: %v", got)
	}
	expect(t, s.do("DELETE", "/api/user", ptok, ""), 204, "partner erasure")
	for range 2 { // every later run alike
		out, exit := cliEnv(t, data, env, "payouts")
		if exit != 0 || strings.Contains(out, "failed") || !strings.Contains(out, "not ready") || len(fs.paid()) != 0 {
			t.Fatalf("payouts after the partner's erasure: exit %d\n%s\npaid %v", exit, out, fs.paid())
		}
	}
	// The dashboard counts no erased partner as a partner, nor as onboarding.
	st, body := opsGet(t, ops, "/dashboard.json")
	var d struct {
		Payouts struct {
			Partners   int      `json:"partners"`
			Onboarding []string `json:"partners_awaiting_onboarding"`
		}
	}
	if err := json.Unmarshal([]byte(body), &d); st != 200 || err != nil || d.Payouts.Partners != 0 || len(d.Payouts.Onboarding) != 0 {
		t.Fatalf("dashboard after the partner's erasure: %d %+v %v", st, d.Payouts, err)
	}
}

// TestPayoutsReadinessChecksRotate: with more partners owed a payout and
// not ready than one run asks Stripe about (maxReadinessChecks, 100), each
// run asks 100, not the same 100 every time: a partner who finished
// onboarding is found within a few runs wherever it sorts. Before, the
// first 100 were asked every run and the 101st never.
func TestPayoutsReadinessChecksRotate(t *testing.T) {
	fs := newFakeStripe(t)
	data := t.TempDir()
	env := []string{"STRIPE_SECRET_KEY=sk_test_partner", "LEVQOR_STRIPE_API=" + fs.URL}
	s := start(t, append(env, "LEVQOR_DATA_DIR="+data)...)
	s.stop() // the schema is made
	db := openDB(t, data)
	defer db.Close()
	ctx := context.Background()
	ledger, err := payout.NewLedger(ctx, payout.LedgerConfig{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	const partners = 101
	now := time.Now()
	for i := range partners {
		id, account := fmt.Sprintf("p%03d", i), fmt.Sprintf("acct_%03d", i)
		if err := ledger.AddOnboardingPartner(ctx, id, account, now); err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.Accrue(ctx, id, "inv-"+id, 6000, "USD", now); err != nil {
			t.Fatal(err)
		}
		fs.mu.Lock()
		fs.accounts = append(fs.accounts, map[string]any{"id": account, "object": "account", "payouts_enabled": false, "charges_enabled": false})
		fs.mu.Unlock()
	}
	last := fmt.Sprintf("acct_%03d", partners-1)
	fs.finishOnboarding(last) // the one that sorts last; no event arrives

	for run := 1; ; run++ {
		before := fs.accountsRead()
		out, _ := cliEnv(t, data, env, "payouts")
		if n := fs.accountsRead() - before; n != 100 && !strings.Contains(out, "is ready at Stripe") {
			t.Fatalf("run %d asked Stripe about %d accounts; want 100 (maxReadinessChecks)\n%s", run, n, out)
		}
		if fs.paid()[last] == 6000 {
			break
		}
		if run == 10 {
			t.Fatalf("after %d runs the partner who finished onboarding is still unpaid: the same %d partners are asked every run", run, 100)
		}
	}
}
