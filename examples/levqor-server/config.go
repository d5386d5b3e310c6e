package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/spendguard"
)

// config is the server's configuration, from the environment (and flags
// for the common settings). A bad value is an error naming the variable;
// it is never replaced by a default.
type config struct {
	Addr           string
	DataDir        string
	RedisURL       string
	RateLimit      ratelimit.Rate
	TrustedProxies []netip.Prefix
	JWTSecret      string
	TelegramToken  string
	TelegramChat   string
	StripeKey      string
	OpenAIAdminKey string
	DailyLimit     spendguard.Money
	SLOLatency     time.Duration
	SLOFailures    int
	BackupDir      string
	BackupKeep     int
	BackupInterval time.Duration
	BackupUpload   string
	ShutdownGrace  time.Duration
	// API roots, for self-hosted Bot API servers, proxies and tests.
	TelegramAPI, StripeAPI, OpenAIAPI string
}

// envVars documents every variable, for --help and the README.
var envVars = [][2]string{
	{"LEVQOR_ADDR", "listen address (default :8080)"},
	{"LEVQOR_DATA_DIR", "data directory: database, keys, flags (default ./data)"},
	{"LEVQOR_REDIS_URL", "Redis or Redis Cluster URL shared by replicas (rate limits, token revocation); unset: in-process"},
	{"LEVQOR_RATE_LIMIT", "API rate limit per client, N/unit[:burst] (default 60/m)"},
	{"LEVQOR_TRUSTED_PROXIES", "CIDRs of proxies whose X-Forwarded-For is believed (default none)"},
	{"LEVQOR_JWT_SECRET", "HS256 signing secret, 32+ bytes (default: EdDSA with a generated key)"},
	{"TELEGRAM_BOT_TOKEN", "Telegram bot token for alerts (with TELEGRAM_CHAT_ID; unset: alerts go to the log)"},
	{"TELEGRAM_CHAT_ID", "Telegram chat for alerts"},
	{"STRIPE_SECRET_KEY", "Stripe key for spend, costs and payouts"},
	{"OPENAI_ADMIN_KEY", "OpenAI admin key for the costs report"},
	{"DAILY_SPEND_LIMIT", "daily spend limit in dollars (default 50)"},
	{"SLO_LATENCY_THRESHOLD", "SLO latency threshold in seconds (default 0.2)"},
	{"SLO_FAIL_THRESHOLD", "watchdog failures before rollback (default 3)"},
	{"LEVQOR_BACKUP_DIR", "backup directory (default <data dir>/backups)"},
	{"LEVQOR_BACKUP_KEEP", "backups kept (default 30)"},
	{"LEVQOR_BACKUP_INTERVAL", "run backups inside serve at this interval, e.g. 24h (default: off)"},
	{"LEVQOR_BACKUP_UPLOAD_DIR", "copy each backup to this directory (a mounted volume)"},
	{"LEVQOR_INFRA_MONTHLY", "fixed monthly infrastructure cost in dollars, for spend and costs"},
	{"LEVQOR_TELEGRAM_API", "Telegram Bot API root (default https://api.telegram.org)"},
	{"LEVQOR_STRIPE_API", "Stripe API root (default https://api.stripe.com)"},
	{"LEVQOR_OPENAI_API", "OpenAI API root (default https://api.openai.com)"},
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Addr: ":8080", DataDir: "./data", RateLimit: ratelimit.PerMinute(60),
		DailyLimit: spendguard.DefaultDailyLimit, SLOLatency: 200 * time.Millisecond, SLOFailures: 3,
		BackupKeep: 30, ShutdownGrace: 15 * time.Second,
	}
	var errs []string
	bad := func(name, value, why string) { errs = append(errs, fmt.Sprintf("%s=%q: %s", name, value, why)) }
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	str("LEVQOR_ADDR", &c.Addr)
	str("LEVQOR_DATA_DIR", &c.DataDir)
	str("LEVQOR_REDIS_URL", &c.RedisURL)
	str("LEVQOR_JWT_SECRET", &c.JWTSecret)
	str("TELEGRAM_BOT_TOKEN", &c.TelegramToken)
	str("TELEGRAM_CHAT_ID", &c.TelegramChat)
	str("STRIPE_SECRET_KEY", &c.StripeKey)
	str("OPENAI_ADMIN_KEY", &c.OpenAIAdminKey)
	str("LEVQOR_BACKUP_DIR", &c.BackupDir)
	str("LEVQOR_BACKUP_UPLOAD_DIR", &c.BackupUpload)
	str("LEVQOR_TELEGRAM_API", &c.TelegramAPI)
	str("LEVQOR_STRIPE_API", &c.StripeAPI)
	str("LEVQOR_OPENAI_API", &c.OpenAIAPI)
	for name, v := range map[string]string{"LEVQOR_TELEGRAM_API": c.TelegramAPI, "LEVQOR_STRIPE_API": c.StripeAPI, "LEVQOR_OPENAI_API": c.OpenAIAPI} {
		if v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://127.0.0.1") && !strings.HasPrefix(v, "http://localhost") {
			bad(name, v, "want an https:// URL (plain http only on localhost)")
		}
	}
	if v := getenv("LEVQOR_RATE_LIMIT"); v != "" {
		r, err := ratelimit.ParseRate(v)
		if err != nil {
			bad("LEVQOR_RATE_LIMIT", v, err.Error())
		}
		c.RateLimit = r
	}
	if v := getenv("LEVQOR_TRUSTED_PROXIES"); v != "" {
		p, err := ratelimit.ParsePrefixes(v)
		if err != nil {
			bad("LEVQOR_TRUSTED_PROXIES", v, err.Error())
		}
		c.TrustedProxies = p
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, "LEVQOR_JWT_SECRET: must be at least 32 bytes")
	}
	if (c.TelegramToken == "") != (c.TelegramChat == "") {
		errs = append(errs, "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set together")
	}
	if v := getenv("DAILY_SPEND_LIMIT"); v != "" {
		m, err := spendguard.ParseMoney(v, "USD")
		if err != nil || m.Amount <= 0 {
			bad("DAILY_SPEND_LIMIT", v, "want a positive dollar amount like 50 or 49.99")
		}
		c.DailyLimit = m
	}
	if v := getenv("SLO_LATENCY_THRESHOLD"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 60 {
			bad("SLO_LATENCY_THRESHOLD", v, "want seconds between 0 and 60, like 0.2")
		}
		c.SLOLatency = time.Duration(f * float64(time.Second))
	}
	intVar := func(name string, dst *int, min int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < min {
				bad(name, v, fmt.Sprintf("want an integer >= %d", min))
			}
			*dst = n
		}
	}
	intVar("SLO_FAIL_THRESHOLD", &c.SLOFailures, 1)
	intVar("LEVQOR_BACKUP_KEEP", &c.BackupKeep, 1)
	if v := getenv("LEVQOR_BACKUP_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			bad("LEVQOR_BACKUP_INTERVAL", v, "want a duration of at least 1m, like 24h")
		}
		c.BackupInterval = d
	}
	if c.BackupDir == "" {
		c.BackupDir = filepath.Join(c.DataDir, "backups")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func (c config) dbPath() string { return filepath.Join(c.DataDir, "levqor.db") }
