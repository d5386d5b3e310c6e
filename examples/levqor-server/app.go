package main

import (
	"github.com/levqor/levqor/internal/atomicfile"

	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/payout"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/slo"
	"github.com/levqor/levqor/spendguard"
	"github.com/levqor/levqor/tokens"
)

// app holds every component of the server.
type app struct {
	cfg      config
	log      *slog.Logger
	db       *database
	rdb      redis.UniversalClient
	keys     *tokens.KeySet
	store    tokens.Store       // what the Manager uses: the cache when there is one
	backing  tokens.Store       // the store behind it
	cache    *tokens.Cache      // nil: every check asks the store
	redisTok *tokens.RedisStore // tokens in Redis: data-loss checks
	tokens   *tokens.Manager
	memLim   *ratelimit.Memory
	limiter  ratelimit.Limiter
	authMem  *ratelimit.Memory
	authLim  ratelimit.Limiter // /api/auth/*, per client IP
	cspLim   *ratelimit.Memory // /csp-report, per client IP
	hashes   *hashGate
	exports  *exportGate // DSAR exports streaming at once
	// webhookSlots bounds the Stripe event bodies over webhookBodyFree
	// read at once.
	webhookSlots chan struct{}
	// webhookReadTime: webhookLargeReadTime (tests shorten it).
	webhookReadTime time.Duration
	accounts        *accountCache // /api/me
	logins          loginGuard
	draining        atomic.Bool // set on SIGTERM: readyz 503, Connection: close
	baseURL         string      // public origin for absolute URLs
	unlockDB        func()      // releases the database lock file
	clientIP        *ratelimit.ClientIP
	headers         *secheaders.Headers
	alerts          *alert.Alerter
	// notify is where the server's own alerts go: alerts, naming the
	// replica when several may raise the same alert.
	notify  alert.Notifier
	replica string // this process, in alerts and their claims
	latency *latencyWatch
	tracker *slo.Tracker // API requests non-5xx and within SLO_LATENCY_THRESHOLD
	// availability counts API requests that were not 5xx, whatever their
	// latency (the dashboard shows both budgets).
	availability *slo.Tracker
	series       latencySeries // the last hour, per minute, for the dashboard
	dash         *dashboard
	dsar         *dsar.Service
	ledger       *payout.Ledger
	metrics      *metrics
	reg          *prometheus.Registry
	// redisLost counts the Redis data losses the watch saw.
	redisLost atomic.Int64
	// Events any client can cause at will are logged at most once per
	// clientLogInterval: forged Stripe webhooks and, per check, failed
	// readiness checks.
	webhookLog *throttledLog
	readyLog   map[string]*throttledLog
	// billing is the spend guard's pause, shared by replicas.
	billing *spendguard.SQLFlags
	// unavailableLog: requests failed because a store was unreachable.
	unavailableLog *throttledLog
	// forgeries blocks verification for client IPs sending forged tokens;
	// forgeryLog says when it starts, at most once per clientLogInterval.
	forgeries  *forgeryGuard
	forgeryLog *throttledLog
	// loginGuardLog: the login throttle could not be asked (Redis down):
	// every login fails alike.
	loginGuardLog *throttledLog
}

func newApp(ctx context.Context, c config, log *slog.Logger) (*app, error) {
	a := &app{cfg: c, log: log, replica: replicaName()}
	a.webhookLog = newThrottledLog(log, clientLogInterval, time.Now)
	a.unavailableLog = newThrottledLog(log, clientLogInterval, time.Now)
	a.loginGuardLog = newThrottledLog(log, clientLogInterval, time.Now)
	a.forgeryLog = newThrottledLog(log, clientLogInterval, time.Now)
	a.readyLog = map[string]*throttledLog{
		"database": newThrottledLog(log, clientLogInterval, time.Now),
		"redis":    newThrottledLog(log, clientLogInterval, time.Now),
	}
	for _, step := range []func(context.Context) error{
		a.openDatabase, a.openRedis, a.openAlerts, a.openTokens, a.openLimiters, a.openObservers, a.openLedgerAndDSAR,
	} {
		if err := step(ctx); err != nil {
			a.close()
			return nil, err
		}
	}
	a.reg = prometheus.NewRegistry()
	a.metrics = newMetrics(a)
	return a, nil
}

// openDatabase opens the database, holds its lock file and migrates it.
func (a *app) openDatabase(ctx context.Context) error {
	var err error
	if a.db, err = openDB(a.cfg); err != nil {
		return err
	}
	if a.cfg.DatabaseURL == "" { // a restore of the SQLite file waits for this lock
		if a.unlockDB, err = lockShared(a.cfg.dbPath() + ".lock"); err != nil {
			return err
		}
	}
	if err := migrate(ctx, a.db); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	a.hashes = newHashGate(a.cfg.HashConcurrency)
	a.webhookSlots = make(chan struct{}, webhookLargeSlots)
	a.webhookReadTime = webhookLargeReadTime
	a.exports = newExportGate(a.cfg.DatabaseMaxConns)
	a.accounts = newAccountCache(time.Now)
	return nil
}

// openRedis makes the Redis client when LEVQOR_REDIS_URL is set.
func (a *app) openRedis(context.Context) error {
	if a.cfg.RedisURL == "" {
		return nil
	}
	var err error
	a.rdb, err = newRedis(a.cfg.RedisURL)
	return err
}

// openAlerts: Telegram or the log, behind history, de-duplication (shared
// by replicas) and a queue.
func (a *app) openAlerts(context.Context) error {
	claims := a.alertClaimer()
	var err error
	a.alerts, err = alert.New(alert.Config{
		Telegram:       alert.TelegramConfig{Token: a.cfg.TelegramToken, ChatID: a.cfg.TelegramChat, BaseURL: a.cfg.TelegramAPI},
		RepeatInterval: time.Hour, Logger: a.log, Claimer: claims,
	})
	a.notify = a.alerts
	if claims != nil {
		a.notify = replicaAlerts{next: a.alerts, name: a.replica}
	}
	return err
}

// openTokens: signing keys, and the revocation store in Redis when
// configured (shared by replicas), else in the database.
func (a *app) openTokens(ctx context.Context) error {
	if err := dsarKeyLost(ctx, a.db, a.cfg); err != nil {
		return err
	}
	var err error
	if a.keys, err = loadKeys(a.cfg); err != nil {
		return err
	}
	dsarKey, err := loadDSARKey(a.cfg)
	if err != nil {
		return err
	}
	signing, err := signingSecret(a.cfg)
	if err != nil {
		return err
	}
	accept, err := acceptSecret(a.cfg)
	if err != nil {
		return err
	}
	if err := agreeOnKeys(ctx, a.db, dsarKey, signing, accept, a.log); err != nil {
		return err
	}
	if a.rdb != nil {
		if a.redisTok, err = tokens.NewRedisStore(tokens.RedisConfig{Client: a.rdb}); err != nil {
			return err
		}
		a.backing = a.redisTok
	} else if a.backing, err = tokens.NewSQLStore(ctx, tokens.SQLConfig{DB: a.db.DB, OnConnLost: a.db.closeIdle}); err != nil {
		return err
	}
	if a.cache, err = a.newRevocationCache(); err != nil {
		return err
	}
	a.store = a.backing
	if a.cache != nil {
		a.store = a.cache
	}
	a.tokens, err = tokens.New(tokens.Config{Keys: a.keys, Store: a.store, Logger: a.log})
	return err
}

// newRevocationCache puts a tokens.Cache in front of the store where every
// revocation reaches it: with Redis through its pub/sub feed (replicas
// tell each other), with the embedded SQLite because this process is its
// only server (serveLock). With PostgreSQL and no Redis there is no feed,
// so every check asks PostgreSQL.
func (a *app) newRevocationCache() (*tokens.Cache, error) {
	var feed tokens.Feed
	switch {
	case a.rdb != nil:
		f, err := tokens.NewRedisFeed(tokens.RedisFeedConfig{Client: a.rdb})
		if err != nil {
			return nil, err
		}
		feed = f
	case a.cfg.DatabaseURL != "":
		return nil, nil
	}
	return tokens.NewCache(tokens.CacheConfig{Store: a.backing, Feed: feed, Logger: a.log})
}

// openLimiters: Redis with in-memory fallback, or memory alone. The auth
// endpoints have their own, stricter budget per client IP.
func (a *app) openLimiters(context.Context) error {
	var err error
	c := a.cfg
	if a.clientIP, err = ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: c.TrustedProxies}); err != nil {
		return err
	}
	if a.memLim, a.limiter, err = a.newLimiter(c.RateLimit, ratelimit.DefaultRedisPrefix); err != nil {
		return err
	}
	if a.authMem, a.authLim, err = a.newLimiter(c.AuthRateLimit, ratelimit.DefaultRedisPrefix+"auth:"); err != nil {
		return err
	}
	if a.cspLim, err = ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: cspReportRate, MaxKeys: c.RateLimitKeys}); err != nil {
		return err
	}
	if a.forgeries, err = newForgeryGuard(c.RateLimitKeys); err != nil {
		return err
	}
	switch {
	case a.rdb != nil:
		a.logins = redisGuard{a.rdb}
	case c.DatabaseURL != "": // replicas may share PostgreSQL alone
		a.logins = &sqlGuard{db: a.db, now: time.Now}
	default:
		a.logins = newMemoryGuard(c.RateLimitKeys)
	}
	return nil
}

// openObservers: security headers (CSP reports go to /csp-report), the
// latency anomaly detector and the availability/latency SLO.
func (a *app) openObservers(context.Context) error {
	var err error
	if a.headers, err = secheaders.New(secheaders.Config{
		CSP:     secheaders.DefaultCSP().ReportURI("/csp-report"),
		IsHTTPS: secheaders.TrustForwardedProto(a.cfg.TrustedProxies),
	}); err != nil {
		return err
	}
	if a.latency, err = newLatencyWatch(a.cfg.SLOLatency); err != nil {
		return err
	}
	a.tracker, err = slo.NewTracker(slo.TrackerConfig{Name: "api", LatencyThreshold: a.cfg.SLOLatency, Notifier: a.notify, Logger: a.log})
	if err != nil {
		return err
	}
	a.availability, err = slo.NewTracker(slo.TrackerConfig{Name: "availability", Notifier: a.notify, Logger: a.log})
	a.dash = &dashboard{a: a}
	return err
}

func (a *app) openLedgerAndDSAR(ctx context.Context) error {
	var err error
	if a.ledger, err = payout.NewLedger(ctx, payout.LedgerConfig{DB: a.db.DB}); err != nil {
		return err
	}
	if a.billing, err = openBilling(ctx, a.cfg, a.db.DB, a.log); err != nil {
		return err
	}
	a.dsar, err = a.newDSAR(ctx)
	return err
}

// cspReportRate bounds CSP violation reports per client IP: a page makes
// a handful; a flood is dropped with 429 before it is parsed or logged.
var cspReportRate = ratelimit.Rate{Limit: 30, Period: time.Minute, Burst: 30}

// breakerCooldown is how soon an open Redis circuit probes again: short,
// so limits are shared again within about a second of Redis returning.
const breakerCooldown = time.Second

// newLimiter builds one in-memory limiter and, with Redis, a Redis limiter
// that falls back to it.
func (a *app) newLimiter(rate ratelimit.Rate, prefix string) (*ratelimit.Memory, ratelimit.Limiter, error) {
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: rate, MaxKeys: a.cfg.RateLimitKeys})
	if err != nil {
		return nil, nil, err
	}
	if a.rdb == nil {
		return mem, mem, nil
	}
	red, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: a.rdb, Rate: rate, Prefix: prefix})
	if err != nil {
		mem.Close()
		return nil, nil, err
	}
	fb, err := ratelimit.NewFallback(ratelimit.FallbackConfig{Primary: red, Secondary: mem, Cooldown: breakerCooldown, Logger: a.log})
	if err != nil {
		mem.Close()
		return nil, nil, err
	}
	return mem, fb, nil
}

func (a *app) newDSAR(ctx context.Context) (*dsar.Service, error) {
	key, err := loadDSARKey(a.cfg)
	if err != nil {
		return nil, err
	}
	src := func(cfg dsar.SQLSourceConfig) (dsar.Source, error) {
		cfg.DB = a.db.DB
		return dsar.NewSQLSource(cfg)
	}
	specs := []dsar.SQLSourceConfig{
		{Name: "sessions", Table: "sessions", SubjectColumn: "user_id", Columns: []string{"family_id", "created_at", "user_agent"}},
		{Name: "security_log", Table: "audit_log", SubjectColumn: "user_id", Columns: []string{"at", "action"}},
		// Commission records are kept for accounting; the link to the person is hashed.
		{Name: "commissions", Table: "levqor_commissions", SubjectColumn: "partner_id", Columns: []string{"amount", "currency", "earned_at", "payout_id"},
			Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"partner_id"}, HashKey: key},
		{Name: "commission_reversals", Table: "levqor_reversals", SubjectColumn: "partner_id", Columns: []string{"amount", "currency", "reversed_at", "payout_id"},
			Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"partner_id"}, HashKey: key},
		{Name: "partner_account", Table: "levqor_partners", SubjectColumn: "id", Columns: []string{"account", "created_at", "payouts_enabled"},
			Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"id", "account"}, HashKey: key},
		// The code goes before the referrals to the partner (recordReferral).
		{Name: "referral_code", Table: "partner_codes", SubjectColumn: "user_id", Columns: []string{"referral_code", "created_at"}},
		// A referred user sees when they were referred, never by whom; a
		// partner sees when each referral happened, never who it was.
		{Name: "referred_by", Table: "referrals", SubjectColumn: "user_id", Columns: []string{"created_at"}},
		{Name: "referred_users", Table: "referrals", SubjectColumn: "partner_id", Columns: []string{"created_at"}},
		// Paid invoices are kept for accounting; the links to both people are hashed.
		{Name: "referred_invoices", Table: "referral_invoices", SubjectColumn: "user_id", Columns: []string{"invoice_id", "amount_paid", "currency", "paid_at"},
			Strategy: dsar.EraseHash, KeyColumn: "invoice_id", EraseColumns: []string{"user_id", "customer", "payment_intent"}, HashKey: key},
		{Name: "commissioned_invoices", Table: "referral_invoices", SubjectColumn: "partner_id", Columns: []string{"commission", "currency", "paid_at"},
			Strategy: dsar.EraseHash, KeyColumn: "invoice_id", EraseColumns: []string{"partner_id"}, HashKey: key},
	}
	if a.rdb == nil {
		// Revoked families must stay revoked: hash the subject, keep the row.
		specs = append(specs, dsar.SQLSourceConfig{Name: "token_families", Table: "levqor_token_families", SubjectColumn: "subject",
			Columns: []string{"id", "revoked", "expires_at"}, Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"subject"}, HashKey: key})
	}
	specs = append(specs, dsar.SQLSourceConfig{Name: "account", Table: "users", SubjectColumn: "id", Columns: []string{"email", "created_at"}})
	// The partner's ledger rows are re-keyed together, first (see
	// payoutsSource); the SQL sources below still export them.
	sources := []dsar.Source{&payoutsSource{db: a.db.DB, q: a.db.dialect.Rebind, ledger: a.ledger, key: key}}
	for _, s := range specs {
		source, err := src(s)
		if err != nil {
			return nil, err
		}
		sources = append(sources, source)
	}
	return dsar.New(ctx, dsar.Config{
		Sources: sources, DB: a.db.DB, SubjectKey: key, Logger: a.log,
		Controller: dsar.Controller{
			Name: "Levqor (reference deployment)", Contact: "privacy@levqor.example",
			Purposes:           []string{"providing the service", "security and abuse prevention", "partner commission accounting"},
			Categories:         []string{"account (email)", "sessions", "security log", "commissions"},
			Recipients:         []string{"Stripe (payouts)", "hosting provider"},
			Retention:          "account data until deletion; commission records 10 years (accounting law), pseudonymised on erasure",
			SourceOfData:       "provided by you when registering and using the service",
			AutomatedDecisions: "none",
		},
	})
}

// Redis client defaults, chosen so that a token check fails within about
// 250 ms when Redis is unreachable or frozen (one retry, short backoff);
// go-redis' own defaults (3 retries, 3 s read timeout, 4 s pool wait) made
// requests hang for seconds. Each can be overridden in LEVQOR_REDIS_URL
// with go-redis' URL parameters of the same name.
var redisDefaults = []struct {
	param string
	value string
}{
	{"dial_timeout", "200ms"},
	{"read_timeout", "100ms"},
	{"write_timeout", "100ms"},
	{"pool_timeout", "100ms"},
	// No retry: after a read timeout a retry waits another read_timeout
	// on the same frozen server, and a request that also pays the rate
	// limiter's probe then answers in over 300 ms. The pool checks idle
	// connections before reuse, so a connection Redis closed is not handed
	// out to fail.
	{"max_retries", "-1"},
}

const (
	dialerRetries   = 1
	dialerRetryWait = 10 * time.Millisecond
)

// newRedis connects to one Redis, or to a Redis Cluster when the URL lists
// more nodes with addr= parameters
// (redis://host1:6379?addr=host2:6379&addr=host3:6379).
func newRedis(raw string) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("LEVQOR_REDIS_URL: not a URL")
	}
	q := u.Query()
	for _, d := range redisDefaults {
		if !q.Has(d.param) {
			q.Set(d.param, d.value)
		}
	}
	u.RawQuery = q.Encode()
	if q.Has("addr") {
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
		}
		if !q.Has("dialer_retries") {
			opts.DialerRetries, opts.DialerRetryTimeout = dialerRetries, dialerRetryWait
		}
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
	}
	// go-redis retries a refused dial 5 times, 100 ms apart, by default
	// (half a second per request while Redis is down).
	opts.DialerRetries, opts.DialerRetryTimeout = dialerRetries, dialerRetryWait
	return redis.NewClient(opts), nil
}

// lockShared holds a shared flock on the database's lock file while the
// server runs: restore takes it exclusively, so it refuses to replace the
// database under a running server, and a server does not start while a
// restore runs.
func lockShared(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("database lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("database lock file %s is held exclusively (a restore is running?): %w", path, err)
	}
	return func() { f.Close() }, nil
}

// loadKeys signs with HS256 when LEVQOR_JWT_SECRET is set, else with an
// Ed25519 key generated once and kept in the data directory (mode 0600).
func loadKeys(c config) (*tokens.KeySet, error) {
	accept, err := acceptSecret(c)
	if err != nil {
		return nil, err
	}
	if c.JWTSecret != "" {
		k, err := tokens.NewHMACKey(hmacKid(c.JWTSecret), []byte(c.JWTSecret))
		if err != nil {
			return nil, fmt.Errorf("LEVQOR_JWT_SECRET: %w", err)
		}
		legacy, err := tokens.NewHMACKey(legacyHMACKid, []byte(c.JWTSecret))
		if err != nil {
			return nil, err
		}
		accepted := []tokens.Key{legacy}
		if accept != nil {
			a, err := tokens.NewHMACKey(hmacKid(string(accept)), accept)
			if err != nil {
				return nil, fmt.Errorf("LEVQOR_JWT_ACCEPT_SECRET: %w", err)
			}
			accepted = append(accepted, a)
		}
		return tokens.NewKeySet(k, accepted...)
	}
	seed, err := signingSecret(c)
	if err != nil {
		return nil, err
	}
	k, err := tokens.NewEd25519Key(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, err
	}
	var accepted []tokens.Key
	if accept != nil {
		a, err := tokens.NewEd25519Key(ed25519.NewKeyFromSeed(accept))
		if err != nil {
			return nil, err
		}
		accepted = append(accepted, a)
	}
	return tokens.NewKeySet(k, accepted...)
}

// legacyHMACKid is the kid every HS256 token carried before kids named
// their secret; it stays an alias of LEVQOR_JWT_SECRET, so tokens issued
// before that change verify until they expire.
const legacyHMACKid = "hs256-env"

// hmacKid names an HS256 secret in the tokens it signs, so that during a
// rotation each token is checked with the secret that signed it: a
// 48-bit digest of the secret (anyone holding a token can test guesses of
// the secret against its signature already; the kid gives no more).
func hmacKid(secret string) string {
	sum := sha256.Sum256([]byte("levqor-server hs256 kid\x00" + secret))
	return "hs256-" + hex.EncodeToString(sum[:6])
}

// acceptSecret is the rotation's other secret, whose tokens verify but
// which never signs: LEVQOR_JWT_ACCEPT_SECRET with HS256, else the seed
// in acceptKeyFile when that file exists; nil when there is none.
func acceptSecret(c config) ([]byte, error) {
	if c.JWTSecret != "" {
		if c.JWTAcceptSecret == "" {
			return nil, nil
		}
		return []byte(c.JWTAcceptSecret), nil
	}
	b, err := readSecret(filepath.Join(c.DataDir, acceptKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// readSecret reads a 32-byte secret file; a missing one is an error
// matching os.ErrNotExist.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("key file %s: %d bytes, want 32 (delete it to generate a new one)", path, len(b))
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	return b, nil
}

// loadSecret reads a 32-byte secret, creating it (mode 0600) on first use.
func loadSecret(path string) ([]byte, error) {
	b, err := readSecret(path)
	if !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Created whole or not at all: another replica starting at the same
	// moment sees either no key or a complete one.
	if err := atomicfile.CreateExclusive(path, b); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadSecret(path) // another replica won
		}
		return nil, err
	}
	return b, nil
}

func (a *app) close() {
	if a.alerts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.alerts.Shutdown(ctx); err != nil {
			a.log.Error("alerts not delivered before exit", "err", err)
		}
		cancel()
	}
	for _, t := range []*slo.Tracker{a.tracker, a.availability} {
		if t != nil {
			_ = t.Close()
		}
	}
	for _, m := range []*ratelimit.Memory{a.memLim, a.authMem, a.cspLim} {
		if m != nil {
			_ = m.Close()
		}
	}
	if a.forgeries != nil {
		_ = a.forgeries.Close()
	}
	if a.cache != nil {
		_ = a.cache.Close()
	}
	if a.backing != nil {
		_ = a.backing.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
	if a.unlockDB != nil {
		a.unlockDB()
	}
}
