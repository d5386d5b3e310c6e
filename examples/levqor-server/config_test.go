package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(nil))
	if err != nil || c.Addr != ":8080" || c.DataDir != "./data" || c.RateLimit.Limit != 60 || c.DailyLimit.Amount != 5000 ||
		c.SLOLatency != 200*time.Millisecond || c.SLOFailures != 3 || c.BackupKeep != 30 || c.BackupDir != "data/backups" {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if c.AuthRateLimit.Limit != 10 || c.AuthRateLimit.Period != time.Minute || c.RateLimitKeys != DefaultRateLimitKeys ||
		c.HashConcurrency < 1 || c.MaxConns != DefaultMaxConns || c.ShutdownDelay != 5*time.Second || c.PublicURL != "" || c.OpsAddr != "" ||
		c.AuditRetention != 365*24*time.Hour {
		t.Fatalf("limit defaults %+v", c)
	}
	c, err = loadConfig(env(map[string]string{"LEVQOR_PUBLIC_URL": "https://levqor.example/", "LEVQOR_SHUTDOWN_DELAY": "0", "LEVQOR_OPS_ADDR": "[::1]:9090", "LEVQOR_AUDIT_RETENTION": "0"}))
	if err != nil || c.PublicURL != "https://levqor.example" || c.ShutdownDelay != 0 || c.OpsAddr != "[::1]:9090" || c.AuditRetention != 0 {
		t.Fatalf("%+v, %v", c, err)
	}
	c, err = loadConfig(env(map[string]string{"LEVQOR_RATE_LIMIT": "10/s:20", "DAILY_SPEND_LIMIT": "12.50", "SLO_LATENCY_THRESHOLD": "0.35", "LEVQOR_TRUSTED_PROXIES": "10.0.0.0/8"}))
	if err != nil || c.RateLimit.Burst != 20 || c.DailyLimit.Amount != 1250 || c.SLOLatency != 350*time.Millisecond || len(c.TrustedProxies) != 1 {
		t.Fatalf("%+v, %v", c, err)
	}
	for name, value := range map[string]string{
		"LEVQOR_RATE_LIMIT": "fast", "LEVQOR_TRUSTED_PROXIES": "everyone", "DAILY_SPEND_LIMIT": "-5",
		"SLO_LATENCY_THRESHOLD": "abc", "SLO_FAIL_THRESHOLD": "0", "LEVQOR_BACKUP_KEEP": "none",
		"LEVQOR_BACKUP_INTERVAL": "1s", "LEVQOR_JWT_SECRET": "short", "TELEGRAM_BOT_TOKEN": "123:abc",
		"LEVQOR_STRIPE_API": "http://evil.example", "LEVQOR_AUTH_RATE_LIMIT": "many", "LEVQOR_RATE_LIMIT_KEYS": "0",
		"LEVQOR_HASH_CONCURRENCY": "-1", "LEVQOR_MAX_CONNS": "lots", "LEVQOR_SHUTDOWN_DELAY": "-1s",
		"LEVQOR_PUBLIC_URL": "https://levqor.example/app", "LEVQOR_OPS_ADDR": ":9090", "LEVQOR_OPS_TOKEN": "short",
		"LEVQOR_AUDIT_RETENTION": "-1h",
	} {
		_, err := loadConfig(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: err %v (must name the variable)", name, value, err)
		}
	}
	if _, err := loadConfig(env(map[string]string{"LEVQOR_AUDIT_RETENTION": "87601h"})); err == nil || !strings.Contains(err.Error(), "LEVQOR_AUDIT_RETENTION") {
		t.Errorf("LEVQOR_AUDIT_RETENTION past ten years: err %v", err)
	}
	// The bounds that protect memory and connections cannot be configured
	// away: one past the top is refused, the top itself taken.
	for name, top := range map[string]int{
		"LEVQOR_DATABASE_MAX_CONNS": 1000, "LEVQOR_RATE_LIMIT_KEYS": 10_000_000, "LEVQOR_HASH_CONCURRENCY": 256,
		"LEVQOR_MAX_CONNS": 1_000_000, "SLO_FAIL_THRESHOLD": 1000, "LEVQOR_BACKUP_KEEP": 100_000,
	} {
		if _, err := loadConfig(env(map[string]string{name: strconv.Itoa(top + 1)})); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "from 1 to "+strconv.Itoa(top)) {
			t.Errorf("%s=%d: err %v", name, top+1, err)
		}
		if _, err := loadConfig(env(map[string]string{name: strconv.Itoa(top)})); err != nil {
			t.Errorf("%s=%d refused: %v", name, top, err)
		}
	}
}

func TestNewRedisCluster(t *testing.T) {
	c, err := newRedis("redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("%T, want a cluster client", c)
	}
	s, err := newRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*redis.Client); !ok {
		t.Fatalf("%T", s)
	}
	if _, err := newRedis("mysql://nope"); err == nil {
		t.Fatal("bad URL accepted")
	}
}

func TestNormaliseEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ada@Example.COM", "ada@example.com"},
		{"  ada@example.com ", "ada@example.com"},
		{"jos\u00e9@b\u00fccher.example", "jos\u00e9@xn--bcher-kva.example"},
		{"jose\u0301@BU\u0308CHER.example", "jos\u00e9@xn--bcher-kva.example"},
		{"a+tag@sub.example.org", "a+tag@sub.example.org"},
		// Lower-casing undoes NFC here; the result must be NFC again, or
		// the address shown would be another account's.
		{"\u0130\u0301@example.com", "\u00ed@example.com"}, // not "i\u0301", another account
	} {
		got, err := normaliseEmail(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("normaliseEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ada", "@example.com", "ada@", "ada@localhost", "a..b@example.com", ".a@example.com",
		"a\u200b@example.com", "a\u200d@example.com", "a\u202e@example.com", "a\x7f@example.com", "a b@example.com",
		"\"q\"@example.com", "a@exa mple.com", "a@-example.com", "a@example..com", strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 64) + ".com", "a\xff@example.com", "(c)a@example.com",
		"a@x\u2135b.io", // maps to Latin and Hebrew in one label: its A-label is refused back
	} {
		if got, err := normaliseEmail(bad); err == nil {
			t.Errorf("normaliseEmail(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCheckPasswordLength(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"1234567", false}, {"12345678", true}, {"\U0001F600\U0001F600", false}, {strings.Repeat("\U0001F600", 8), true},
		{strings.Repeat("a", 1024), true}, {strings.Repeat("a", 1025), false}, {strings.Repeat("\u00e9", 1024), true},
		{strings.Repeat("\U0001F600", 1025), false},
	} {
		if err := checkPasswordLength(tc.pw); (err == nil) != tc.ok {
			t.Errorf("checkPasswordLength(%d bytes, %d chars) = %v", len(tc.pw), len([]rune(tc.pw)), err)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "other", "XYZ": "other", strings.Repeat("Q", 4096): "other"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%.10q) = %q", in, got)
		}
	}
}

// TestREADMEListsEveryVariable keeps the README's configuration table in
// step with --help.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envVars {
		if !strings.Contains(string(b), "`"+v[0]+"`") {
			t.Errorf("README does not document %s", v[0])
		}
	}
}

// TestConfigErrorsNeverEchoSecrets: a secret that is too short is named,
// not quoted.
func TestConfigErrorsNeverEchoSecrets(t *testing.T) {
	for _, name := range []string{"LEVQOR_JWT_SECRET", "LEVQOR_OPS_TOKEN", "LEVQOR_BACKUP_KEY", "LEVQOR_DSAR_KEY"} {
		_, err := loadConfig(func(k string) string {
			if k == name {
				return "hunter2-secret"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
