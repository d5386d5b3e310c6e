package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/anomaly"
	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/payout"
	"github.com/levqor/levqor/ratelimit"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/slo"
	"github.com/levqor/levqor/tokens"
)

// app holds every component of the server.
type app struct {
	cfg      config
	log      *slog.Logger
	db       *sql.DB
	rdb      redis.UniversalClient
	keys     *tokens.KeySet
	store    tokens.Store
	tokens   *tokens.Manager
	memLim   *ratelimit.Memory
	limiter  ratelimit.Limiter
	clientIP *ratelimit.ClientIP
	headers  *secheaders.Headers
	queue    *alert.Queue
	history  *alert.History
	alerts   alert.Notifier
	latency  *anomaly.ZScore
	tracker  *slo.Tracker
	dsar     *dsar.Service
	ledger   *payout.Ledger
	metrics  *metrics
	reg      *prometheus.Registry
}

// openDB opens the SQLite database in the data directory.
func openDB(c config) (*sql.DB, error) {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", c.DataDir, err)
	}
	db, err := sql.Open("sqlite", "file:"+c.dbPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", c.dbPath(), err)
	}
	return db, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
	family_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TEXT NOT NULL, user_agent TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS audit_log (
	id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_id);
`

func newApp(ctx context.Context, c config, log *slog.Logger) (*app, error) {
	a := &app{cfg: c, log: log}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	var err error
	if a.db, err = openDB(c); err != nil {
		return nil, err
	}
	if _, err := a.db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}

	// Alerts: Telegram or the log, behind history, de-duplication and a queue.
	base, err := alert.New(alert.TelegramConfig{Token: c.TelegramToken, ChatID: c.TelegramChat, BaseURL: c.TelegramAPI}, log)
	if err != nil {
		return nil, err
	}
	if a.history, err = alert.NewHistory(alert.HistoryConfig{Next: base}); err != nil {
		return nil, err
	}
	dedup, err := alert.NewDedup(alert.DedupConfig{Next: a.history, RepeatInterval: time.Hour})
	if err != nil {
		return nil, err
	}
	if a.queue, err = alert.NewQueue(alert.QueueConfig{Next: dedup, Logger: log}); err != nil {
		return nil, err
	}
	a.alerts = a.queue

	// Tokens.
	if a.keys, err = loadKeys(c); err != nil {
		return nil, err
	}
	if c.RedisURL != "" {
		if a.rdb, err = newRedis(c.RedisURL); err != nil {
			return nil, err
		}
		if a.store, err = tokens.NewRedisStore(tokens.RedisConfig{Client: a.rdb}); err != nil {
			return nil, err
		}
	} else {
		if a.store, err = tokens.NewSQLStore(ctx, tokens.SQLConfig{DB: a.db}); err != nil {
			return nil, err
		}
	}
	if a.tokens, err = tokens.New(tokens.Config{Keys: a.keys, Store: a.store, Logger: log}); err != nil {
		return nil, err
	}

	// Rate limiting: Redis with in-memory fallback, or memory alone.
	if a.clientIP, err = ratelimit.NewClientIP(ratelimit.IPConfig{TrustedProxies: c.TrustedProxies}); err != nil {
		return nil, err
	}
	if a.memLim, err = ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: c.RateLimit}); err != nil {
		return nil, err
	}
	a.limiter = a.memLim
	if a.rdb != nil {
		red, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: a.rdb, Rate: c.RateLimit})
		if err != nil {
			return nil, err
		}
		if a.limiter, err = ratelimit.NewFallback(ratelimit.FallbackConfig{Primary: red, Secondary: a.memLim, Logger: log}); err != nil {
			return nil, err
		}
	}

	// Security headers: CSP violation reports go to /csp-report.
	if a.headers, err = secheaders.New(secheaders.Config{
		CSP:     secheaders.DefaultCSP().ReportURI("/csp-report"),
		IsHTTPS: secheaders.TrustForwardedProto(c.TrustedProxies),
	}); err != nil {
		return nil, err
	}

	// Latency anomalies and the availability/latency SLO.
	if a.latency, err = anomaly.NewZScore(anomaly.Config{Window: 200, MinSamples: 50, Direction: anomaly.Spikes, Threshold: 4}); err != nil {
		return nil, err
	}
	if a.tracker, err = slo.NewTracker(slo.TrackerConfig{Name: "api", LatencyThreshold: c.SLOLatency, Notifier: a.alerts, Logger: log}); err != nil {
		return nil, err
	}

	// Partner ledger and DSAR.
	if a.ledger, err = payout.NewLedger(ctx, a.db, false); err != nil {
		return nil, err
	}
	if a.dsar, err = a.newDSAR(ctx); err != nil {
		return nil, err
	}

	a.reg = prometheus.NewRegistry()
	a.metrics = newMetrics(a)
	ok = true
	return a, nil
}

func (a *app) newDSAR(ctx context.Context) (*dsar.Service, error) {
	key, err := loadSecret(filepath.Join(a.cfg.DataDir, "dsar.key"))
	if err != nil {
		return nil, err
	}
	src := func(cfg dsar.SQLSourceConfig) (dsar.Source, error) {
		cfg.DB = a.db
		return dsar.NewSQLSource(cfg)
	}
	specs := []dsar.SQLSourceConfig{
		{Name: "sessions", Table: "sessions", SubjectColumn: "user_id", Columns: []string{"family_id", "created_at", "user_agent"}},
		{Name: "security_log", Table: "audit_log", SubjectColumn: "user_id", Columns: []string{"at", "action"}},
		// Commission records are kept for accounting; the link to the person is hashed.
		{Name: "commissions", Table: "levqor_commissions", SubjectColumn: "partner_id", Columns: []string{"amount", "currency", "earned_at", "payout_id"},
			Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"partner_id"}, HashKey: key},
		{Name: "partner_account", Table: "levqor_partners", SubjectColumn: "id", Columns: []string{"account", "created_at"},
			Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"id", "account"}, HashKey: key},
	}
	if a.rdb == nil {
		// Revoked families must stay revoked: hash the subject, keep the row.
		specs = append(specs, dsar.SQLSourceConfig{Name: "token_families", Table: "levqor_token_families", SubjectColumn: "subject",
			Columns: []string{"id", "revoked", "expires_at"}, Strategy: dsar.EraseHash, KeyColumn: "id", EraseColumns: []string{"subject"}, HashKey: key})
	}
	specs = append(specs, dsar.SQLSourceConfig{Name: "account", Table: "users", SubjectColumn: "id", Columns: []string{"email", "created_at"}})
	var sources []dsar.Source
	for _, s := range specs {
		source, err := src(s)
		if err != nil {
			return nil, err
		}
		sources = append(sources, source)
	}
	return dsar.New(ctx, dsar.Config{
		Sources: sources, DB: a.db, SubjectKey: key, Logger: a.log,
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

// newRedis connects to one Redis, or to a Redis Cluster when the URL lists
// more nodes with addr= parameters
// (redis://host1:6379?addr=host2:6379&addr=host3:6379).
func newRedis(url string) (redis.UniversalClient, error) {
	const dial, rw = time.Second, 500 * time.Millisecond
	if strings.Contains(url, "addr=") {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dial, rw, rw
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("LEVQOR_REDIS_URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dial, rw, rw
	return redis.NewClient(opts), nil
}

// loadKeys signs with HS256 when LEVQOR_JWT_SECRET is set, else with an
// Ed25519 key generated once and kept in the data directory (mode 0600).
func loadKeys(c config) (*tokens.KeySet, error) {
	if c.JWTSecret != "" {
		k, err := tokens.NewHMACKey("hs256-env", []byte(c.JWTSecret))
		if err != nil {
			return nil, fmt.Errorf("LEVQOR_JWT_SECRET: %w", err)
		}
		return tokens.NewKeySet(k)
	}
	seed, err := loadSecret(filepath.Join(c.DataDir, "jwt-ed25519.key"))
	if err != nil {
		return nil, err
	}
	k, err := tokens.NewEd25519Key(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, err
	}
	return tokens.NewKeySet(k)
}

// loadSecret reads a 32-byte secret, creating it (mode 0600) on first use.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("key file %s: %d bytes, want 32 (delete it to generate a new one)", path, len(b))
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Write a complete temporary file, then link it into place: another
	// replica starting at the same moment sees either no key or a whole one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadSecret(path) // another replica won
		}
		return nil, err
	}
	return b, nil
}

func (a *app) close() {
	if a.queue != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.queue.Close(ctx)
		cancel()
	}
	if a.tracker != nil {
		_ = a.tracker.Close()
	}
	if a.memLim != nil {
		_ = a.memLim.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}
