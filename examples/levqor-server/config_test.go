package main

import (
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
	c, err = loadConfig(env(map[string]string{"LEVQOR_RATE_LIMIT": "10/s:20", "DAILY_SPEND_LIMIT": "12.50", "SLO_LATENCY_THRESHOLD": "0.35", "LEVQOR_TRUSTED_PROXIES": "10.0.0.0/8"}))
	if err != nil || c.RateLimit.Burst != 20 || c.DailyLimit.Amount != 1250 || c.SLOLatency != 350*time.Millisecond || len(c.TrustedProxies) != 1 {
		t.Fatalf("%+v, %v", c, err)
	}
	for name, value := range map[string]string{
		"LEVQOR_RATE_LIMIT": "fast", "LEVQOR_TRUSTED_PROXIES": "everyone", "DAILY_SPEND_LIMIT": "-5",
		"SLO_LATENCY_THRESHOLD": "abc", "SLO_FAIL_THRESHOLD": "0", "LEVQOR_BACKUP_KEEP": "none",
		"LEVQOR_BACKUP_INTERVAL": "1s", "LEVQOR_JWT_SECRET": "short", "TELEGRAM_BOT_TOKEN": "123:abc",
		"LEVQOR_STRIPE_API": "http://evil.example",
	} {
		_, err := loadConfig(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: err %v (must name the variable)", name, value, err)
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
