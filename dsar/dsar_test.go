package dsar_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqlitetest"
	"github.com/levqor/levqor/internal/testclock"
	"github.com/levqor/levqor/internal/testhttp"
	"github.com/levqor/levqor/tokens"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

type fixture struct {
	db  *sql.DB
	q   func(string) string // ? placeholders for the engine
	svc *dsar.Service
	clk *testclock.Clock
}

// engine is a database the suite runs on: SQLite files, or a real PostgreSQL.
type engine struct {
	name     string
	open     func(t testing.TB) *sql.DB
	q        func(string) string
	serialPK string
}

var engines = []engine{
	{"sqlite", func(t testing.TB) *sql.DB { return sqlitetest.Open(t, sqlitetest.Path(t)) },
		func(q string) string { return q }, "INTEGER PRIMARY KEY"},
	{"postgres", func(t testing.TB) *sql.DB { return pgtest.Open(t) }, rebindPG, "BIGSERIAL PRIMARY KEY"},
}

// rebindPG numbers ? placeholders as $1, $2, ...
func rebindPG(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func forEngines(t *testing.T, f func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t testing.TB, extra ...func(*sql.DB) dsar.Source) *fixture {
	t.Helper()
	return setupOn(t, engines[0], extra...)
}

func setupOn(t testing.TB, e engine, extra ...func(*sql.DB) dsar.Source) *fixture {
	t.Helper()
	db := e.open(t)
	for _, q := range []string{
		`CREATE TABLE users (id ` + e.serialPK + `, email TEXT UNIQUE, name TEXT, created_at TEXT)`,
		`CREATE TABLE orders (id ` + e.serialPK + `, user_email TEXT, item TEXT, total_cents INTEGER)`,
		`CREATE TABLE invoices (id ` + e.serialPK + `, user_email TEXT, address TEXT, amount_cents INTEGER)`,
		`CREATE TABLE events (id ` + e.serialPK + `, user_email TEXT, ip TEXT, kind TEXT)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(q string, args ...any) {
		if _, err := db.Exec(e.q(q), args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ email, name string }{{alice, "Alice Liddell"}, {bob, "Bob Builder"}} {
		exec(`INSERT INTO users (email, name, created_at) VALUES (?, ?, '2026-01-02T03:04:05Z')`, u.email, u.name)
		for i := range 3 {
			exec(`INSERT INTO orders (user_email, item, total_cents) VALUES (?, ?, ?)`, u.email, "item-"+u.name[:3], 1000+i)
			exec(`INSERT INTO events (user_email, ip, kind) VALUES (?, ?, 'login')`, u.email, "203.0.113."+u.name[:1])
		}
		exec(`INSERT INTO invoices (user_email, address, amount_cents) VALUES (?, ?, 4200)`, u.email, u.name+", 1 Main St")
	}
	mk := func(cfg dsar.SQLSourceConfig) dsar.Source {
		cfg.DB = db
		s, err := dsar.NewSQLSource(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sources := []dsar.Source{
		mk(dsar.SQLSourceConfig{Table: "orders", SubjectColumn: "user_email", Columns: []string{"id", "item", "total_cents"}}),
		mk(dsar.SQLSourceConfig{Table: "invoices", SubjectColumn: "user_email", Columns: []string{"id", "address", "amount_cents"},
			Strategy: dsar.EraseNull, EraseColumns: []string{"user_email", "address"}}),
		mk(dsar.SQLSourceConfig{Name: "activity", Table: "events", SubjectColumn: "user_email", Columns: []string{"id", "ip", "kind"},
			Strategy: dsar.EraseHash, EraseColumns: []string{"user_email", "ip"}, KeyColumn: "id", HashKey: []byte("0123456789abcdef-events")}),
	}
	for _, e := range extra {
		sources = append(sources, e(db))
	}
	sources = append(sources, mk(dsar.SQLSourceConfig{Table: "users", SubjectColumn: "email", Columns: []string{"email", "name", "created_at"}}))
	clk := testclock.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	svc, err := dsar.New(context.Background(), dsar.Config{
		Sources: sources, DB: db, SubjectKey: []byte("audit-key-0123456789"), Now: clk.Now,
		Controller: dsar.Controller{Name: "Levqor Ltd", Contact: "privacy@levqor.example", Purposes: []string{"providing the service"}, Retention: "invoices: 10 years (tax law)"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, q: e.q, svc: svc, clk: clk}
}

type exportDoc struct {
	Subject     string                      `json:"subject"`
	GeneratedAt string                      `json:"generated_at"`
	Controller  dsar.Controller             `json:"controller"`
	Data        map[string][]map[string]any `json:"data"`
	Summary     map[string]int              `json:"summary"`
}

func TestExportContainsAllAndOnlyTheSubject(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		f := setupOn(t, e)
		var buf bytes.Buffer
		sum, err := f.svc.Export(context.Background(), &buf, alice, "test")
		if err != nil {
			t.Fatal(err)
		}
		var doc exportDoc
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("export is not JSON: %v\n%s", err, buf.String())
		}
		want := map[string]int{"orders": 3, "invoices": 1, "activity": 3, "users": 1}
		for src, n := range want {
			if len(doc.Data[src]) != n || sum[src] != n || doc.Summary[src] != n {
				t.Errorf("%s: %d records (summary %d/%d), want %d", src, len(doc.Data[src]), sum[src], doc.Summary[src], n)
			}
		}
		if doc.Subject != alice || doc.Controller.Name != "Levqor Ltd" || len(doc.Controller.Rights) != len(dsar.DefaultRights()) || doc.GeneratedAt != "2026-11-25T09:00:00Z" {
			t.Fatalf("header %+v", doc)
		}
		if doc.Data["users"][0]["name"] != "Alice Liddell" || doc.Data["invoices"][0]["address"] != "Alice Liddell, 1 Main St" {
			t.Fatalf("values %+v", doc.Data)
		}
		for _, leak := range []string{bob, "Bob", "203.0.113.B"} {
			if strings.Contains(buf.String(), leak) {
				t.Fatalf("another subject's data in the export: %q", leak)
			}
		}
		s2, _ := f.svc.Summary(context.Background(), alice)
		for src, n := range want {
			if s2[src] != n {
				t.Fatalf("Summary %v", s2)
			}
		}
	})
}

func TestErase(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		f := setupOn(t, e)
		ctx := context.Background()
		rep, err := f.svc.Erase(ctx, alice, "support:jane")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows["orders"] != 3 || rep.Rows["invoices"] != 1 || rep.Rows["activity"] != 3 || rep.Rows["users"] != 1 {
			t.Fatalf("rows %v", rep.Rows)
		}
		count := func(q string, args ...any) int {
			var n int
			if err := f.db.QueryRow(f.q(q), args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if count(`SELECT COUNT(*) FROM users WHERE email = ?`, alice) != 0 || count(`SELECT COUNT(*) FROM orders WHERE user_email = ?`, alice) != 0 {
			t.Fatal("deleted sources still hold alice")
		}
		// Invoices kept, personal columns nulled, amounts intact.
		if count(`SELECT COUNT(*) FROM invoices WHERE user_email IS NULL AND address IS NULL AND amount_cents = 4200`) != 1 {
			t.Fatal("invoice not anonymised as configured")
		}
		// Events kept, pseudonymised.
		if count(`SELECT COUNT(*) FROM events WHERE user_email LIKE 'hmac:%' AND ip LIKE 'hmac:%' AND kind = 'login'`) != 3 {
			t.Fatal("events not hashed as configured")
		}
		// Pseudonym names exactly what EraseHash wrote.
		if count(`SELECT COUNT(*) FROM events WHERE user_email = ?`, dsar.Pseudonym([]byte("0123456789abcdef-events"), alice)) != 3 {
			t.Fatal("Pseudonym differs from what EraseHash writes")
		}
		// Bob untouched.
		if count(`SELECT COUNT(*) FROM users WHERE email = ?`, bob) != 1 || count(`SELECT COUNT(*) FROM orders WHERE user_email = ?`, bob) != 3 ||
			count(`SELECT COUNT(*) FROM events WHERE user_email = ?`, bob) != 3 || count(`SELECT COUNT(*) FROM invoices WHERE user_email = ?`, bob) != 1 {
			t.Fatal("erasing alice touched bob")
		}
		// Idempotent.
		rep, err = f.svc.Erase(ctx, alice, "support:jane")
		if err != nil {
			t.Fatal(err)
		}
		for src, n := range rep.Rows {
			if n != 0 {
				t.Fatalf("second erasure changed %d rows of %s", n, src)
			}
		}
		// Audit trail: two erasures, by reference only.
		trail, err := f.svc.AuditTrail(ctx, alice)
		if err != nil || len(trail) != 2 || trail[0].Action != "erase" || trail[0].Actor != "support:jane" || trail[0].SubjectRef != f.svc.SubjectRef(alice) {
			t.Fatalf("audit %+v (%v)", trail, err)
		}
		var detail map[string]int
		_ = json.Unmarshal(trail[0].Detail, &detail)
		if detail["orders"] != 3 || detail["users"] != 1 {
			t.Fatalf("audit detail %s", trail[0].Detail)
		}
		if count(`SELECT COUNT(*) FROM levqor_dsar_audit WHERE subject_ref LIKE '%alice%' OR detail LIKE '%alice%' OR actor LIKE '%alice%'`) != 0 {
			t.Fatal("the audit trail re-stores the erased identity")
		}
	})
}

// failingSource fails its erasure, after the sources before it in the
// same transaction already ran.
type failingSource struct{ dsar.TxSource }

func (f failingSource) Name() string { return "broken" }
func (f failingSource) EraseTx(context.Context, *sql.Tx, string) (int64, error) {
	return 0, errors.New("disk on fire")
}

func TestEraseIsAllOrNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		f := setupOn(t, e, func(db *sql.DB) dsar.Source {
			orders, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "orders", SubjectColumn: "user_email", Columns: []string{"id"}})
			return failingSource{orders}
		})
		_, err := f.svc.Erase(context.Background(), alice, "test")
		if err == nil || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("err = %v", err)
		}
		var n int
		f.db.QueryRow(f.q(`SELECT COUNT(*) FROM orders WHERE user_email = ?`), alice).Scan(&n)
		if n != 3 {
			t.Fatalf("orders erased (%d left) although the transaction failed", n)
		}
		if trail, _ := f.svc.AuditTrail(context.Background(), alice); len(trail) != 0 {
			t.Fatal("a failed erasure was audited as done")
		}
	})
}

func TestRequestsDeadline(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		f := setupOn(t, e)
		ctx := context.Background()
		r1, err := f.svc.OpenRequest(ctx, dsar.KindAccess, alice)
		if err != nil {
			t.Fatal(err)
		}
		if !r1.DueAt.Equal(time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)) {
			t.Fatalf("due %v, want one month later", r1.DueAt)
		}
		r2, _ := f.svc.OpenRequest(ctx, dsar.KindErasure, bob)
		r3, _ := f.svc.OpenRequest(ctx, dsar.KindErasure, "carol@example.com")
		f.clk.Advance(32 * 24 * time.Hour)
		if err := f.svc.CompleteRequest(ctx, r2.ID, dsar.StatusCompleted, "done"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ExtendRequest(ctx, r3.ID, "complex request"); err != nil {
			t.Fatal(err)
		}
		overdue, err := f.svc.Requests(ctx, true)
		if err != nil || len(overdue) != 1 || overdue[0].ID != r1.ID {
			t.Fatalf("overdue %+v (%v)", overdue, err)
		}
		if _, err := f.svc.ExtendRequest(ctx, r3.ID, "again"); err == nil {
			t.Fatal("extended twice")
		}
		if err := f.svc.CompleteRequest(ctx, r2.ID, dsar.StatusCompleted, "again"); !errors.Is(err, dsar.ErrNoRequest) {
			t.Fatalf("closing a closed request: %v", err)
		}
		all, _ := f.svc.Requests(ctx, false)
		if len(all) != 3 || strings.Contains(all[0].SubjectRef, "alice") {
			t.Fatalf("requests %+v", all)
		}
	})
}

func TestHandlers(t *testing.T) {
	f := setup(t)
	h := f.svc.Handler(dsar.HandlerConfig{
		Subject: func(r *http.Request) (string, bool) {
			u := r.Header.Get("X-Authenticated-User") // stands in for tokens.FromContext
			return u, u != ""
		},
		MaxBody: 256,
	})
	srv := httptest.NewServer(http.StripPrefix("/api/user", h))
	defer srv.Close()
	do := func(method, path, user, body string) (*http.Response, string) {
		h := http.Header{}
		if user != "" {
			h.Set("X-Authenticated-User", user)
		}
		return testhttp.Do(t, method, srv.URL+"/api/user"+path, body, h)
	}
	for _, tc := range []struct {
		name, method, path, user, body string
		status                         int
		contains                       string
	}{
		{"anonymous export", "POST", "/export", "", "", 401, "authentication required"},
		{"export of someone else by email (IDOR)", "POST", "/export", alice, `{"email":"` + bob + `"}`, 403, "your own data"},
		{"export of someone else by subject", "POST", "/export", alice, `{"subject":"` + bob + `"}`, 403, "your own data"},
		{"malformed JSON", "POST", "/export", alice, `{"email":`, 400, "malformed JSON"},
		{"unknown field", "POST", "/export", alice, `{"user_id": 7}`, 400, "malformed JSON"},
		{"oversized body", "POST", "/export", alice, `{"email":"` + strings.Repeat("a", 1000) + `"}`, 413, "too large"},
		{"own export naming self", "POST", "/export", alice, `{"email":"` + alice + `"}`, 200, "Alice Liddell"},
		{"own export, GET", "GET", "/export", alice, "", 200, "Alice Liddell"},
		{"summary", "GET", "/export/summary", bob, "", 200, `"orders":3`},
		{"erase without confirm", "POST", "/erase", alice, `{}`, 400, "confirm"},
		{"erase with GET", "GET", "/erase", alice, "", 405, "not allowed"},
		{"erase someone else", "POST", "/erase", alice, `{"confirm":true,"email":"` + bob + `"}`, 403, "your own data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(tc.method, tc.path, tc.user, tc.body)
			if res.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d %s; want %d containing %q", res.StatusCode, body, tc.status, tc.contains)
			}
			if tc.status == 200 && tc.path == "/export" {
				if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
					t.Fatalf("Content-Disposition %q", cd)
				}
				if strings.Contains(body, "Bob") {
					t.Fatal("bob's data in alice's export")
				}
			}
			if tc.status >= 400 {
				var e map[string]string
				if json.Unmarshal([]byte(body), &e) != nil || e["error"] == "" {
					t.Fatalf("error body %q", body)
				}
			}
		})
	}
	res, body := do("POST", "/erase", bob, `{"confirm":true}`)
	if res.StatusCode != 200 || !strings.Contains(body, `"users":1`) {
		t.Fatalf("erase: %d %s", res.StatusCode, body)
	}
	_, body = do("GET", "/export/summary", bob, "")
	if !strings.Contains(body, `"orders":0`) || !strings.Contains(body, `"users":0`) {
		t.Fatalf("after erasure: %s", body)
	}
	_, body = do("GET", "/export/summary", alice, "")
	if !strings.Contains(body, `"users":1`) {
		t.Fatalf("bob's erasure touched alice: %s", body)
	}
	reqs, _ := f.svc.Requests(context.Background(), false)
	done := 0
	for _, r := range reqs {
		if r.Status == dsar.StatusCompleted {
			done++
		}
	}
	if done != 3 { // two exports, one erasure
		t.Fatalf("%d requests completed, want 3: %+v", done, reqs)
	}
}

func TestSourceConfig(t *testing.T) {
	db := sqlitetest.Open(t, sqlitetest.Path(t))
	for name, cfg := range map[string]dsar.SQLSourceConfig{
		"injection in table":       {DB: db, Table: "users; DROP TABLE x", SubjectColumn: "e", Columns: []string{"a"}},
		"no columns":               {DB: db, Table: "t", SubjectColumn: "e"},
		"null without subject col": {DB: db, Table: "t", SubjectColumn: "e", Columns: []string{"a"}, Strategy: dsar.EraseNull, EraseColumns: []string{"a"}},
		"hash without key":         {DB: db, Table: "t", SubjectColumn: "e", Columns: []string{"a"}, Strategy: dsar.EraseHash, EraseColumns: []string{"e"}},
		"no db":                    {Table: "t", SubjectColumn: "e", Columns: []string{"a"}},
	} {
		if _, err := dsar.NewSQLSource(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := dsar.New(context.Background(), dsar.Config{DB: db, SubjectKey: []byte("short")}); err == nil {
		t.Error("no sources / short key accepted")
	}
}

// TestHandlerWithoutClaims: the README's Subject function, mounted without
// any auth middleware in front, answers 401; the old snippet dereferenced
// the claims before checking ok and panicked.
func TestHandlerWithoutClaims(t *testing.T) {
	f := setup(t)
	h := f.svc.Handler(dsar.HandlerConfig{
		Subject: func(r *http.Request) (string, bool) {
			c, ok := tokens.FromContext(r.Context())
			if !ok {
				return "", false
			}
			return c.Subject, true
		},
	})
	for _, path := range []string{"/export", "/export/summary"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s without claims: %d, want 401", path, rec.Code)
		}
	}
}

func TestIsPseudonym(t *testing.T) {
	p := dsar.Pseudonym([]byte("a pseudonymisation key of 32 bytes"), "u_123")
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{p, true},
		{"u_123", false},
		{"hmac:", false},
		{p[:len(p)-1], false},
		{p + "0", false},
		{strings.ToUpper(p[:5]) + p[5:], false},
		{p[:len(p)-1] + "g", false},
		{"acct_1Nv0FGQ9RKHgCVdK", false},
	} {
		if got := dsar.IsPseudonym(tc.s); got != tc.want {
			t.Errorf("IsPseudonym(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
