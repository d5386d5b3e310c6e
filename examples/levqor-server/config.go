package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/sitemap"
	"github.com/levqor/levqor/spendguard"
)

// config is the server's configuration, from the environment (and flags
// for the common settings). A bad value is an error naming the variable;
// it is never replaced by a default.
type config struct {
	Addr        string
	DataDir     string
	DatabaseURL string // postgres://...; "" = SQLite in DataDir
	// DatabaseMaxConns bounds the PostgreSQL connection pool.
	DatabaseMaxConns int
	RedisURL         string
	// RedisCheckInterval: how often the Redis data-loss markers are read.
	RedisCheckInterval time.Duration
	RateLimit          ratelimit.Rate
	TrustedProxies     []netip.Prefix
	JWTSecret          string
	JWTAcceptSecret    string // verifies tokens, never signs: a rotation's next or previous secret
	TelegramToken      string
	TelegramChat       string
	StripeKey          string
	// StripeWebhookSecrets verify POST /webhooks/stripe (whsec_...): the
	// account endpoint's and, for partners' account.updated, the Connect
	// endpoint's.
	StripeWebhookSecrets []string
	OpenAIAdminKey       string
	DailyLimit           money.Money
	InfraMonthly         money.Money // fixed monthly cost for the cost report
	SLOLatency           time.Duration
	SLOFailures          int
	BackupDir            string
	BackupKeep           int
	BackupInterval       time.Duration
	BackupUpload         string
	BackupKey            []byte // HMAC key for backup tags; nil: none
	DSARKey              []byte // pseudonymisation key; nil: dsar.key in DataDir
	ShutdownGrace        time.Duration
	ShutdownDelay        time.Duration
	// AuditRetention is how long security-log rows are kept; 0 keeps
	// them forever.
	AuditRetention time.Duration

	// Limits against abusive clients (README "Limits and abuse").
	AuthRateLimit   ratelimit.Rate // per client IP on /api/auth/*
	RateLimitKeys   int            // keys each in-memory limiter holds
	HashConcurrency int            // password hashes computed at once
	MaxConns        int            // open client connections
	MaxSessions     int            // usable logins per account; the oldest is signed out
	PublicURL       string         // absolute URLs (sitemap); "" = http://localhost:<port>
	IndexNowKey     string         // served at /<key>.txt; "" = no IndexNow
	IndexNowAPI     string         // IndexNow endpoint; "" = sitemap.DefaultIndexNowEndpoint
	OpsAddr         string         // listener for /metrics; "" = public port
	OpsToken        string         // bearer token for a non-loopback ops listener
	// API roots, for self-hosted Bot API servers, proxies and tests.
	TelegramAPI, StripeAPI, OpenAIAPI string
	// HeapFloor is the heap the GC may fill while the live heap is small
	// (heapfloor.go): DefaultHeapFloor, or 0 (Go's default) when GOGC is
	// set, so an operator's GOGC is taken as given.
	HeapFloor uint64
}

// envVars documents every variable, for --help and the README.
var envVars = [][2]string{
	{"LEVQOR_ADDR", "listen address (default :8080)"},
	{"LEVQOR_DATA_DIR", "data directory: database (SQLite), keys (default ./data)"},
	{"LEVQOR_DATABASE_URL", "PostgreSQL URL (postgres://user:pass@host/db) for all server state, shared by replicas (default: SQLite in the data directory)"},
	{"LEVQOR_DATABASE_MAX_CONNS", "database connections per replica, PostgreSQL or SQLite, 1 to " + strconv.Itoa(maxDatabaseConns) + " (default 20)"},
	{"LEVQOR_REDIS_URL", "Redis or Redis Cluster URL shared by replicas (rate limits, token revocation); unset: in-process"},
	{"LEVQOR_REDIS_CHECK_INTERVAL", "how often replicas check that Redis kept its data, alerting when it lost it (default 10s)"},
	{"LEVQOR_RATE_LIMIT", "API rate limit per client, N/unit[:burst] (default 60/m)"},
	{"LEVQOR_TRUSTED_PROXIES", "CIDRs of proxies whose X-Forwarded-For is believed (default none)"},
	{"LEVQOR_JWT_SECRET", "HS256 signing secret, 32+ bytes, the same on every replica (default: EdDSA with a key generated in the data directory)"},
	{"LEVQOR_JWT_ACCEPT_SECRET", "a second HS256 secret whose tokens verify but which never signs, for rotating LEVQOR_JWT_SECRET without logging anyone out (default: none)"},
	{"LEVQOR_DSAR_KEY", "32+ byte secret pseudonymising erased subjects, the same on every replica; never change it (default: generated in the data directory)"},
	{"TELEGRAM_BOT_TOKEN", "Telegram bot token for alerts (with TELEGRAM_CHAT_ID; unset: alerts go to the log)"},
	{"TELEGRAM_CHAT_ID", "Telegram chat for alerts"},
	{"STRIPE_SECRET_KEY", "Stripe key for spend, costs, payouts and partner sign-up (Connect accounts)"},
	{"STRIPE_WEBHOOK_SECRET", "signing secrets (whsec_..., comma-separated) of the Stripe webhook endpoints posting to /webhooks/stripe: the account endpoint's and the Connect endpoint's; unset: the endpoint answers 503"},
	{"OPENAI_ADMIN_KEY", "OpenAI admin key for the costs report"},
	{"DAILY_SPEND_LIMIT", "daily spend limit in dollars (default 50)"},
	{"SLO_LATENCY_THRESHOLD", "SLO latency threshold in seconds (default 0.2)"},
	{"SLO_FAIL_THRESHOLD", "watchdog failures before rollback, 1 to " + strconv.Itoa(maxSLOFailures) + " (default 3)"},
	{"LEVQOR_BACKUP_DIR", "backup directory (default <data dir>/backups)"},
	{"LEVQOR_BACKUP_KEEP", "backups kept, locally and in LEVQOR_BACKUP_UPLOAD_DIR, 1 to " + strconv.Itoa(maxBackupsKept) + " (default 30)"},
	{"LEVQOR_BACKUP_INTERVAL", "run backups inside serve at this interval after the newest one (at start if it is older), e.g. 24h; replicas that set it take turns (default: off)"},
	{"LEVQOR_BACKUP_UPLOAD_DIR", "copy each backup to this directory (a mounted volume)"},
	{"LEVQOR_BACKUP_KEY", "32+ byte secret: backups get an HMAC tag, and verify/restore refuse untagged or doctored ones"},
	{"LEVQOR_INFRA_MONTHLY", "fixed monthly infrastructure cost in dollars, shown by costs (not counted by the daily spend guard)"},
	{"LEVQOR_AUTH_RATE_LIMIT", "rate limit per client IP on /api/auth/* (default 10/m)"},
	{"LEVQOR_RATE_LIMIT_KEYS", "keys each in-memory rate limiter holds, about 46 bytes each, 1 to " + strconv.Itoa(maxRateLimitKeys) + " (default 100000)"},
	{"LEVQOR_HASH_CONCURRENCY", "password hashes (19 MiB each) computed at once, 1 to " + strconv.Itoa(maxHashes) + " (default GOMAXPROCS)"},
	{"LEVQOR_MAX_CONNS", "open client connections, 1 to " + strconv.Itoa(maxConns) + "; at the cap the oldest idle one is closed (default 1024)"},
	{"LEVQOR_MAX_SESSIONS", "usable logins per account, 1 to " + strconv.Itoa(maxSessions) + "; a login beyond them signs out the oldest (default 100)"},
	{"LEVQOR_PUBLIC_URL", "public origin for absolute URLs, e.g. https://levqor.example (default http://localhost:<port>)"},
	{"LEVQOR_INDEXNOW_KEY", "IndexNow key, 8-128 characters of a-z A-Z 0-9 -; served at /<key>.txt, used by sitemap submit (default: none)"},
	{"LEVQOR_INDEXNOW_API", "IndexNow endpoint for sitemap submit (default https://api.indexnow.org/indexnow)"},
	{"LEVQOR_OPS_ADDR", "serve /metrics, the ops dashboard (/dashboard) and the profiler on this address only, e.g. 127.0.0.1:9090 (default: /metrics on the public port, no dashboard)"},
	{"LEVQOR_OPS_TOKEN", "bearer token required on the ops listener; needed when LEVQOR_OPS_ADDR is not loopback"},
	{"LEVQOR_SHUTDOWN_DELAY", "on SIGTERM, keep serving (readyz 503, Connection: close) this long before draining (default 5s; 0 disables)"},
	{"LEVQOR_AUDIT_RETENTION", "how long the security log (logins, registrations, deletions) is kept, up to 87600h; 0 keeps it forever (default 8760h, a year)"},
	{"LEVQOR_TELEGRAM_API", "Telegram Bot API root (default https://api.telegram.org)"},
	{"LEVQOR_STRIPE_API", "Stripe API root (default https://api.stripe.com)"},
	{"LEVQOR_OPENAI_API", "OpenAI API root (default https://api.openai.com)"},
	{"GOGC", "Go's garbage collector percent, taken as given when set (default: a 16 MiB heap floor, Go's default once the live heap is half that)"},
}

// loadConfig reads the configuration from the environment. Every bad
// value is reported (naming its variable, never echoing a secret) in one
// error; none is replaced by a default.
func loadConfig(getenv func(string) string) (config, error) {
	c := defaultConfig()
	e := &env{get: getenv}
	e.readServer(&c)
	e.readLimits(&c)
	e.readIntegrations(&c)
	e.readOps(&c)
	e.readBackups(&c)
	if len(e.errs) > 0 {
		return c, fmt.Errorf("configuration:\n  %s", strings.Join(e.errs, "\n  "))
	}
	return c, nil
}

func defaultConfig() config {
	return config{
		Addr: ":8080", DataDir: "./data", RateLimit: ratelimit.PerMinute(60),
		DailyLimit: spendguard.DefaultDailyLimit(), SLOLatency: 200 * time.Millisecond, SLOFailures: 3,
		BackupKeep: 30, ShutdownGrace: 15 * time.Second, ShutdownDelay: DefaultShutdownDelay,
		AuditRetention: DefaultAuditRetention,
		AuthRateLimit:  ratelimit.PerMinute(10), RateLimitKeys: DefaultRateLimitKeys,
		HashConcurrency: max(1, runtime.GOMAXPROCS(0)), MaxConns: DefaultMaxConns, MaxSessions: DefaultMaxSessions,
		DatabaseMaxConns: DefaultDatabaseMaxConns, RedisCheckInterval: DefaultRedisCheckInterval,
		HeapFloor: DefaultHeapFloor,
	}
}

// env reads variables and collects what is wrong with them.
type env struct {
	get  func(string) string
	errs []string
}

func (e *env) bad(name, value, why string) {
	e.errs = append(e.errs, fmt.Sprintf("%s=%q: %s", name, value, why))
}

// secretBad reports a bad secret without echoing it.
func (e *env) secretBad(name, why string) { e.errs = append(e.errs, name+": "+why) }

func (e *env) str(name string, dst *string) {
	if v := e.get(name); v != "" {
		*dst = v
	}
}

func (e *env) rate(name string, dst *ratelimit.Rate) {
	if v := e.get(name); v != "" {
		r, err := ratelimit.ParseRate(v)
		if err != nil {
			e.bad(name, v, err.Error())
		}
		*dst = r
	}
}

func (e *env) integer(name string, dst *int, min, max int) {
	if v := e.get(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			e.bad(name, v, fmt.Sprintf("want an integer from %d to %d", min, max))
		}
		*dst = n
	}
}

func (e *env) dollars(name string, dst *money.Money, positive bool) {
	if v := e.get(name); v != "" {
		m, err := money.Parse(v, "USD")
		if err != nil || m.Amount < 0 || (positive && m.Amount == 0) {
			e.bad(name, v, "want a dollar amount like 50 or 49.99")
		}
		*dst = m
	}
}

func (e *env) duration(name string, dst *time.Duration, min, max time.Duration, example string) {
	if v := e.get(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < min || d > max {
			e.bad(name, v, fmt.Sprintf("want a duration between %v and %v, like %s", min, max, example))
		}
		*dst = d
	}
}

func (e *env) readServer(c *config) {
	e.str("LEVQOR_ADDR", &c.Addr)
	e.str("LEVQOR_DATA_DIR", &c.DataDir)
	if e.get("GOGC") != "" {
		c.HeapFloor = 0
	}
	e.str("LEVQOR_REDIS_URL", &c.RedisURL)
	e.duration("LEVQOR_REDIS_CHECK_INTERVAL", &c.RedisCheckInterval, 100*time.Millisecond, time.Hour, "10s")
	if v := e.get("LEVQOR_DATABASE_URL"); v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			e.secretBad("LEVQOR_DATABASE_URL", "want postgres://user:password@host:5432/database")
		}
		c.DatabaseURL = v
	}
	e.integer("LEVQOR_DATABASE_MAX_CONNS", &c.DatabaseMaxConns, 1, maxDatabaseConns)
	e.str("LEVQOR_JWT_SECRET", &c.JWTSecret)
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		e.secretBad("LEVQOR_JWT_SECRET", "must be at least 32 bytes")
	}
	e.str("LEVQOR_JWT_ACCEPT_SECRET", &c.JWTAcceptSecret)
	switch {
	case c.JWTAcceptSecret == "":
	case c.JWTSecret == "":
		e.secretBad("LEVQOR_JWT_ACCEPT_SECRET", "needs LEVQOR_JWT_SECRET (with EdDSA, rotate with the jwt-ed25519.accept.key file)")
	case len(c.JWTAcceptSecret) < 32:
		e.secretBad("LEVQOR_JWT_ACCEPT_SECRET", "must be at least 32 bytes")
	case c.JWTAcceptSecret == c.JWTSecret:
		e.secretBad("LEVQOR_JWT_ACCEPT_SECRET", "is LEVQOR_JWT_SECRET itself: set the other secret of the rotation")
	}
	if v := e.get("LEVQOR_DSAR_KEY"); v != "" {
		if len(v) < 32 {
			e.secretBad("LEVQOR_DSAR_KEY", "must be at least 32 bytes")
		}
		c.DSARKey = []byte(v)
	}
	if v := e.get("LEVQOR_TRUSTED_PROXIES"); v != "" {
		p, err := ratelimit.ParsePrefixes(v)
		if err != nil {
			e.bad("LEVQOR_TRUSTED_PROXIES", v, err.Error())
		}
		c.TrustedProxies = p
	}
	if v := e.get("LEVQOR_PUBLIC_URL"); v != "" {
		u, err := parsePublicURL(v)
		if err != nil {
			e.bad("LEVQOR_PUBLIC_URL", v, err.Error())
		}
		c.PublicURL = u
	}
	e.duration("LEVQOR_SHUTDOWN_DELAY", &c.ShutdownDelay, 0, time.Minute, "5s")
	e.duration("LEVQOR_AUDIT_RETENTION", &c.AuditRetention, 0, maxAuditRetention, "8760h")
	if v := e.get("LEVQOR_INDEXNOW_KEY"); v != "" {
		if err := sitemap.ValidKey(v); err != nil {
			e.errs = append(e.errs, "LEVQOR_INDEXNOW_KEY: "+strings.TrimPrefix(err.Error(), "sitemap: "))
		}
		c.IndexNowKey = v
	}
}

func (e *env) readLimits(c *config) {
	e.rate("LEVQOR_RATE_LIMIT", &c.RateLimit)
	e.rate("LEVQOR_AUTH_RATE_LIMIT", &c.AuthRateLimit)
	e.integer("LEVQOR_RATE_LIMIT_KEYS", &c.RateLimitKeys, 1, maxRateLimitKeys)
	e.integer("LEVQOR_HASH_CONCURRENCY", &c.HashConcurrency, 1, maxHashes)
	e.integer("LEVQOR_MAX_CONNS", &c.MaxConns, 1, maxConns)
	e.integer("LEVQOR_MAX_SESSIONS", &c.MaxSessions, 1, maxSessions)
}

func (e *env) readIntegrations(c *config) {
	e.str("TELEGRAM_BOT_TOKEN", &c.TelegramToken)
	e.str("TELEGRAM_CHAT_ID", &c.TelegramChat)
	if (c.TelegramToken == "") != (c.TelegramChat == "") {
		e.errs = append(e.errs, "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set together")
	}
	e.str("STRIPE_SECRET_KEY", &c.StripeKey)
	if v := e.get("STRIPE_WEBHOOK_SECRET"); v != "" {
		for _, secret := range strings.Split(v, ",") {
			secret = strings.TrimSpace(secret)
			if len(secret) < 16 {
				e.errs = append(e.errs, "STRIPE_WEBHOOK_SECRET: each comma-separated secret must be a Stripe signing secret (whsec_...)")
				break
			}
			c.StripeWebhookSecrets = append(c.StripeWebhookSecrets, secret)
		}
	}
	e.str("OPENAI_ADMIN_KEY", &c.OpenAIAdminKey)
	for name, dst := range map[string]*string{"LEVQOR_TELEGRAM_API": &c.TelegramAPI, "LEVQOR_STRIPE_API": &c.StripeAPI, "LEVQOR_OPENAI_API": &c.OpenAIAPI, "LEVQOR_INDEXNOW_API": &c.IndexNowAPI} {
		e.str(name, dst)
		if v := *dst; v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://127.0.0.1") && !strings.HasPrefix(v, "http://localhost") {
			e.bad(name, v, "want an https:// URL (plain http only on localhost)")
		}
	}
	e.dollars("DAILY_SPEND_LIMIT", &c.DailyLimit, true)
	e.dollars("LEVQOR_INFRA_MONTHLY", &c.InfraMonthly, false)
	if v := e.get("SLO_LATENCY_THRESHOLD"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 60 {
			e.bad("SLO_LATENCY_THRESHOLD", v, "want seconds between 0 and 60, like 0.2")
		}
		c.SLOLatency = time.Duration(f * float64(time.Second))
	}
	e.integer("SLO_FAIL_THRESHOLD", &c.SLOFailures, 1, maxSLOFailures)
}

func (e *env) readOps(c *config) {
	e.str("LEVQOR_OPS_ADDR", &c.OpsAddr)
	e.str("LEVQOR_OPS_TOKEN", &c.OpsToken)
	if c.OpsToken != "" && len(c.OpsToken) < 16 {
		e.secretBad("LEVQOR_OPS_TOKEN", "must be at least 16 characters")
	}
	if c.OpsAddr == "" {
		return
	}
	host, _, err := net.SplitHostPort(c.OpsAddr)
	switch {
	case err != nil:
		e.bad("LEVQOR_OPS_ADDR", c.OpsAddr, "want host:port, like 127.0.0.1:9090")
	case !isLoopbackHost(host) && c.OpsToken == "":
		e.bad("LEVQOR_OPS_ADDR", c.OpsAddr, "not a loopback address: set LEVQOR_OPS_TOKEN to protect it, or bind to 127.0.0.1")
	}
}

func (e *env) readBackups(c *config) {
	e.str("LEVQOR_BACKUP_DIR", &c.BackupDir)
	e.str("LEVQOR_BACKUP_UPLOAD_DIR", &c.BackupUpload)
	e.integer("LEVQOR_BACKUP_KEEP", &c.BackupKeep, 1, maxBackupsKept)
	e.duration("LEVQOR_BACKUP_INTERVAL", &c.BackupInterval, time.Minute, 365*24*time.Hour, "24h")
	if c.BackupDir == "" {
		c.BackupDir = filepath.Join(c.DataDir, "backups")
	}
	if v := e.get("LEVQOR_BACKUP_KEY"); v != "" {
		if len(v) < 32 {
			e.secretBad("LEVQOR_BACKUP_KEY", "must be at least 32 bytes")
		}
		c.BackupKey = []byte(v)
	}
}

// Upper bounds of the integer variables, so that none can switch off the
// bound it sets (memory, connections) or ask for the impossible.
const (
	maxDatabaseConns = 1000
	maxRateLimitKeys = 10_000_000 // about 46 bytes each
	maxHashes        = 256        // 19 MiB each
	maxConns         = 1_000_000
	maxSessions      = 10_000
	maxSLOFailures   = 1000
	maxBackupsKept   = 100_000
)

// Defaults of the limits (README "Limits and abuse").
const (
	DefaultShutdownDelay = 5 * time.Second
	// DefaultAuditRetention is how long security-log rows are kept.
	DefaultAuditRetention = 365 * 24 * time.Hour
	// maxAuditRetention bounds LEVQOR_AUDIT_RETENTION (ten years).
	maxAuditRetention    = 10 * 365 * 24 * time.Hour
	DefaultRateLimitKeys = 100_000
	DefaultMaxConns      = 1024
	// DefaultMaxSessions is how many logins of one account stay usable at
	// once (LEVQOR_MAX_SESSIONS): phones, laptops and browsers, with room
	// to spare.
	DefaultMaxSessions = 100
	// DefaultDatabaseMaxConns is each replica's PostgreSQL pool size.
	DefaultDatabaseMaxConns = 20
	// DefaultRedisCheckInterval is how often the Redis data-loss markers
	// are read.
	DefaultRedisCheckInterval = 10 * time.Second
)

// parsePublicURL accepts an http(s) origin with an optional "/" path and
// returns it without the trailing slash.
func parsePublicURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("want an origin like https://levqor.example")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("want an origin only (no path, query or user)")
	}
	return u.Scheme + "://" + u.Host, nil
}

// isLoopbackHost reports whether a listen host binds only to loopback.
// An empty host (all interfaces) is not loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// publicURL is the configured public origin, or http://localhost:<port>.
func (c config) publicURL(listen net.Addr) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	port := "8080"
	if tcp, ok := listen.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	return "http://localhost:" + port
}

// databaseName names the database for messages, without credentials.
func (c config) databaseName() string {
	if c.DatabaseURL == "" {
		return c.dbPath()
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return "postgres"
	}
	return "postgres://" + u.Host + u.Path
}

func (c config) dbPath() string { return filepath.Join(c.DataDir, "levqor.db") }
