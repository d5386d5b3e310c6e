package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/redistest"
	"github.com/levqor/levqor/ratelimit"
)

// TestLoginGuards: each guard counts an attempt before its password is
// checked, refuses the one after loginFailures with the rest of the
// window, gives back released attempts and resets on success.
func TestLoginGuards(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, tc := range []struct {
		name  string
		guard loginGuard
	}{
		{"memory", newMemoryGuard(100)},
		{"redis", redisGuard{rdb}},
		{"postgres", &sqlGuard{db: migratedDB(t, pgtest.NewDatabase(t)), now: time.Now}},
		{"sqlite", &sqlGuard{db: migratedDB(t, ""), now: time.Now}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ctx := tc.guard, t.Context()
			attempt := func(key string) time.Duration {
				t.Helper()
				d, err := g.Attempt(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			k := accountKey(tc.name + "-victim@example.com")
			for i := range loginFailures {
				if d := attempt(k); d != 0 {
					t.Fatalf("attempt %d refused (%v)", i+1, d)
				}
			}
			d := attempt(k)
			if d <= loginWindow-time.Minute || d > loginWindow {
				t.Fatalf("attempt %d: locked for %v, want about %v", loginFailures+1, d, loginWindow)
			}
			// Refused attempts are not counted: one release frees one.
			if err := g.Release(ctx, k); err != nil {
				t.Fatal(err)
			}
			if d := attempt(k); d != 0 {
				t.Fatalf("attempt after a release refused (%v)", d)
			}
			if d := attempt(k); d == 0 {
				t.Fatal("second attempt after one release allowed")
			}
			if err := g.Succeeded(ctx, k); err != nil {
				t.Fatal(err)
			}
			if d := attempt(k); d != 0 {
				t.Fatalf("attempt after a success refused (%v)", d)
			}
			// Releasing more than was counted never banks attempts.
			other := accountKey(tc.name + "-other@example.com")
			for range 3 {
				if err := g.Release(ctx, other); err != nil {
					t.Fatal(err)
				}
			}
			for i := range loginFailures {
				if d := attempt(other); d != 0 {
					t.Fatalf("attempt %d refused (%v)", i+1, d)
				}
			}
			if d := attempt(other); d == 0 {
				t.Fatalf("attempt %d allowed after releases made in advance", loginFailures+1)
			}
		})
	}
}

// migratedDB is the server's database, migrated: PostgreSQL at url, or a
// new SQLite file when url is "".
func migratedDB(t *testing.T, url string) *database {
	t.Helper()
	db, err := openDB(config{DatabaseURL: url, DataDir: t.TempDir(), DatabaseMaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSQLGuardWindows: a locked account's window ends when it says, the
// next attempt opens a new one, and housekeeping deletes ended windows
// (one row per email tried: a client trying many emails must not grow the
// table for good).
func TestSQLGuardWindows(t *testing.T) {
	for _, url := range []string{"", pgtest.NewDatabase(t)} {
		cfg := defaultConfig()
		cfg.DataDir, cfg.DatabaseURL = t.TempDir(), url
		a, err := newApp(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.close)
		db := a.db
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		g := &sqlGuard{db: db, now: func() time.Time { return now }}
		ctx := t.Context()
		k := accountKey("window@example.com")
		for range loginFailures {
			if d, err := g.Attempt(ctx, k); d != 0 || err != nil {
				t.Fatalf("%s: attempt refused: %v %v", db.dialect, d, err)
			}
		}
		now = now.Add(5 * time.Minute)
		if d, err := g.Attempt(ctx, k); d != loginWindow-5*time.Minute || err != nil {
			t.Fatalf("%s: locked for %v (%v); want the window's last %v", db.dialect, d, err, loginWindow-5*time.Minute)
		}
		now = now.Add(loginWindow - 5*time.Minute)
		if d, err := g.Attempt(ctx, k); d != 0 || err != nil {
			t.Fatalf("%s: an attempt after the window ended: %v %v", db.dialect, d, err)
		}
		for i := range 50 {
			if _, err := g.Attempt(ctx, accountKey(strconv.Itoa(i)+"@example.com")); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(loginWindow)
		done, err := a.housekeeping(ctx, now)
		if err != nil || done.loginWindows != 51 {
			t.Fatalf("%s: housekeeping deleted %d ended windows (%v); want 51", db.dialect, done.loginWindows, err)
		}
		// Between housekeeping runs, attempts delete ended windows once a
		// minute: the table holds about a window's worth of emails.
		for i := range 30 {
			if _, err := g.Attempt(ctx, accountKey("later-"+strconv.Itoa(i)+"@example.com")); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(loginWindow + sqlGuardSweep)
		if _, err := g.Attempt(ctx, accountKey("next@example.com")); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_throttle`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("%s: %d login-throttle rows after the windows ended (%v); want only the new attempt's", db.dialect, rows, err)
		}
	}
}

func TestMemoryGuardBounded(t *testing.T) {
	g := newMemoryGuard(100)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	ctx := t.Context()
	for i := range 10_000 {
		_, _ = g.Attempt(ctx, accountKey(strconv.Itoa(i)))
	}
	if len(g.keys) > 100 {
		t.Fatalf("%d keys held, cap 100", len(g.keys))
	}
	k := accountKey("victim")
	for range loginFailures {
		if d, _ := g.Attempt(ctx, k); d != 0 {
			t.Fatal("locked too early")
		}
	}
	if d, _ := g.Attempt(ctx, k); d != loginWindow {
		t.Fatalf("locked for %v", d)
	}
	now = now.Add(loginWindow)
	if d, _ := g.Attempt(ctx, k); d != 0 {
		t.Fatalf("still locked after the window: %v", d)
	}
}

// TestMemoryGuardEvictsOldest: when full, the window that started first
// goes, whether or not it has ended; a window started again counts as new.
func TestMemoryGuardEvictsOldest(t *testing.T) {
	g := newMemoryGuard(3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	ctx := t.Context()
	count := func(key string) int {
		if e, ok := g.keys[key]; ok {
			return e.Value.(*failWindow).count
		}
		return 0
	}
	for _, k := range []string{"a", "b", "b", "c"} {
		_, _ = g.Attempt(ctx, k)
		now = now.Add(time.Second)
	}
	_, _ = g.Attempt(ctx, "d") // a goes
	if count("a") != 0 || count("b") != 2 || count("c") != 1 || count("d") != 1 || len(g.keys) != 3 || g.order.Len() != 3 {
		t.Fatalf("after d: a %d, b %d, c %d, d %d; %d keys", count("a"), count("b"), count("c"), count("d"), len(g.keys))
	}
	now = now.Add(loginWindow) // every window ended
	_, _ = g.Attempt(ctx, "c") // c starts again: now the newest
	_, _ = g.Attempt(ctx, "e") // b goes (the oldest), then d would be next
	_, _ = g.Attempt(ctx, "f") // d goes
	if count("b") != 0 || count("d") != 0 || count("c") != 1 || count("e") != 1 || count("f") != 1 {
		t.Fatalf("after e and f: b %d, c %d, d %d, e %d, f %d", count("b"), count("c"), count("d"), count("e"), count("f"))
	}
	if err := g.Succeeded(ctx, "c"); err != nil || len(g.keys) != 2 || g.order.Len() != 2 {
		t.Fatalf("after a success: %d keys, %d in order, %v", len(g.keys), g.order.Len(), err)
	}
}

// BenchmarkMemoryGuardFull: a login attempt for a new email when the
// guard is full (100,000 keys, the server's default) evicts the oldest in
// O(1). Every attempt is a new key (its string is made in the loop: one
// of the allocations).
func BenchmarkMemoryGuardFull(b *testing.B) {
	g := newMemoryGuard(DefaultRateLimitKeys)
	ctx := b.Context()
	for i := range DefaultRateLimitKeys {
		_, _ = g.Attempt(ctx, "old "+strconv.Itoa(i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = g.Attempt(ctx, strconv.Itoa(i))
	}
	if len(g.keys) != DefaultRateLimitKeys {
		b.Fatalf("%d keys", len(g.keys))
	}
}

func TestConnClient(t *testing.T) {
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: trusted})
	if err != nil {
		t.Fatal(err)
	}
	client := connClient(ip)
	for addr, want := range map[string]string{
		"203.0.113.7:4000":            "203.0.113.7",
		"[2001:db8:1:2:3:4:5:6]:4000": "2001:db8:1:2::/64", // one subscriber's block
		"[2001:db8:1:2:ff::1]:80":     "2001:db8:1:2::/64",
		"[::ffff:203.0.113.7]:4000":   "203.0.113.7",
		"10.1.2.3:4000":               "", // a trusted proxy carries many clients
		"[2001:db8:ffff:1::1]:4000":   "",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := client(a); got != want {
			t.Errorf("connClient(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestConnLimiterEvictsLongestQuiet: at the cap, Accept closes the
// connection that fell quiet first (idle after a response, or silent past
// newGrace since it was accepted), never one serving a request.
func TestConnLimiterEvictsLongestQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(ln, 3, func(net.Addr) string { return "" })
	defer l.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accept := func() *limitedConn {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*limitedConn)
	}
	var server [3]*limitedConn
	for i := range server {
		dial()
		server[i] = accept()
		l.connState(server[i], http.StateActive)
	}
	// Idle in the order 2, 0; 1 stays busy.
	l.connState(server[2], http.StateIdle)
	l.connState(server[0], http.StateIdle)
	closed := func(c *limitedConn) bool {
		_ = c.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Conn.Read(make([]byte, 1))
		return errors.Is(err, net.ErrClosed)
	}
	for i, want := range []int{2, 0} {
		dial()
		next := accept()
		l.connState(next, http.StateActive)
		for j, c := range server {
			if got := closed(c); got != (j == want) {
				t.Fatalf("accept %d: connection %d closed %v (want only %d closed)", i, j, got, want)
			}
		}
		server[want] = next
	}
	// Every connection busy, nobody over a share: Accept waits.
	dial()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		got <- c
	}()
	select {
	case c := <-got:
		t.Fatalf("accepted %v with every connection busy", c)
	case <-time.After(300 * time.Millisecond):
	}
	l.connState(server[1], http.StateIdle)
	select {
	case c := <-got:
		if c == nil || !closed(server[1]) {
			t.Fatalf("after connection 1 went idle: accepted %v, 1 closed %v", c, closed(server[1]))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection 1 went idle and Accept still waits")
	}
}
