package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/backup"
)

func cmdServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "serve")
	addr := fs.String("addr", env.cfg.Addr, "listen address (LEVQOR_ADDR)")
	data := fs.String("data", env.cfg.DataDir, "data directory (LEVQOR_DATA_DIR)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg := withFlags(env.cfg, *addr, *data)
	defer startHeapFloor(cfg.HeapFloor)()
	a, err := newApp(ctx, cfg, env.log)
	if err != nil {
		env.log.Error("start-up failed", "err", err)
		return 1
	}
	defer a.close()
	handler, err := a.routes()
	if err != nil {
		env.log.Error("start-up failed", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		env.log.Error("listen", "addr", cfg.Addr, "err", err)
		return 1
	}
	a.baseURL = cfg.publicURL(ln.Addr())
	if cfg.PublicURL == "" {
		env.log.Warn("LEVQOR_PUBLIC_URL is not set: absolute URLs (sitemap) use " + a.baseURL)
	}
	limited := newConnLimiter(ln, cfg.MaxConns, connClient(a.clientIP))
	srv := newPublicServer(handler, limited, env.log)
	var ops *http.Server
	if cfg.OpsAddr != "" {
		if ops, err = a.startOps(cfg); err != nil {
			env.log.Error("ops listener", "addr", cfg.OpsAddr, "err", err)
			ln.Close()
			return 1
		}
	}
	bg, stopBG := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.backgroundJobs(bg)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(limited) }()
	env.log.Info("levqor-server listening", "addr", ln.Addr().String(), "data", cfg.DataDir, "redis", cfg.RedisURL != "", "signing", a.keys.Signing().Algorithm(), "max_conns", cfg.MaxConns)
	code := 0
	select {
	case err := <-serveErr:
		env.log.Error("server stopped", "err", err)
		code = 1
	case <-ctx.Done():
		code = a.shutdown(env.log, srv, cfg)
	}
	if ops != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = ops.Shutdown(sctx)
		cancel()
	}
	stopBG()
	<-done
	env.log.Info("stopped")
	return code
}

// withFlags applies serve's --addr and --data over the environment.
func withFlags(cfg config, addr, data string) config {
	cfg.Addr = addr
	if data != cfg.DataDir {
		cfg.DataDir = data
		if os.Getenv("LEVQOR_BACKUP_DIR") == "" {
			cfg.BackupDir = data + "/backups"
		}
	}
	return cfg
}

// newPublicServer is the public listener's server with its limits.
func newPublicServer(handler http.Handler, limited *connLimiter, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         limited.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Connection limits of the public listener (README "Limits and abuse").
const (
	readHeaderTimeout = 10 * time.Second
	// writeTimeout is how long a response may take, from the end of the
	// request headers.
	writeTimeout   = 60 * time.Second
	idleTimeout    = 30 * time.Second
	maxHeaderBytes = 32 << 10
)

// shutdown stops serving without losing requests: /readyz turns 503 at
// once so load balancers stop sending new connections, the server keeps
// serving for LEVQOR_SHUTDOWN_DELAY with "Connection: close" on every
// response (keep-alive connections end after their current request), and
// then drains in-flight requests for up to the shutdown grace period.
func (a *app) shutdown(log *slog.Logger, srv *http.Server, cfg config) int {
	a.draining.Store(true)
	if cfg.ShutdownDelay > 0 {
		log.Info("shutting down: not ready, still serving", "delay", cfg.ShutdownDelay)
		time.Sleep(cfg.ShutdownDelay)
	}
	log.Info("shutting down: draining in-flight requests", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown: requests still running after the grace period", "err", err)
		return 1
	}
	return 0
}

// startOps serves /metrics, the dashboard and the Go profiler (/debug/pprof/) on
// LEVQOR_OPS_ADDR, behind a bearer token when LEVQOR_OPS_TOKEN is set
// (required off loopback; see loadConfig). The profiler is never on the
// public port.
func (a *app) startOps(cfg config) (*http.Server, error) {
	ln, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.handler)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, ...
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	page, data, err := a.dashboardHandlers()
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux.Handle("GET /dashboard", page)
	mux.Handle("GET /dashboard.json", data)
	reports, err := a.cspReports()
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux.Handle("POST /csp-report", reports)
	var h http.Handler = mux
	if cfg.OpsToken != "" {
		h = requireOpsToken(cfg.OpsToken, mux)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	a.log.Info("ops listener", "addr", ln.Addr().String(), "token", cfg.OpsToken != "")
	return srv, nil
}

// requireOpsToken admits requests carrying "Authorization: Bearer <token>".
func requireOpsToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok { // a browser (the dashboard) sends the token as a Basic password
			_, got, ok = r.BasicAuth()
		}
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="levqor-ops", Basic realm="levqor-ops", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "ops token required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// backgroundJobs runs scheduled work until ctx ends (the SLO tracker's
// evaluation runs in its own goroutine): housekeeping, backups when
// LEVQOR_BACKUP_INTERVAL is set, and the Redis data-loss check when tokens
// live in Redis.
func (a *app) backgroundJobs(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		a.runHousekeeping(ctx)
		every(ctx, housekeepingInterval, a.runHousekeeping)
	})
	if a.cfg.BackupInterval > 0 {
		wg.Go(func() { a.scheduledBackups(ctx) })
	}
	if a.redisTok != nil {
		w := &redisWatch{interval: a.cfg.RedisCheckInterval, store: a.redisTok, cache: a.cache, alerts: a.notify, log: a.log, lost: &a.redisLost}
		wg.Go(func() {
			w.check(ctx) // the markers of this process' first view of Redis
			every(ctx, a.cfg.RedisCheckInterval, w.check)
		})
	}
	<-ctx.Done()
	wg.Wait()
}

// maxBackupRetry bounds how long a failed scheduled backup waits before
// it is tried again (the interval, if shorter).
const maxBackupRetry = 10 * time.Minute

// scheduleRetry is how long scheduled backups wait after the database
// failed them the record (so the schedule is unknown).
const scheduleRetry = time.Minute

// scheduledBackups backs up every LEVQOR_BACKUP_INTERVAL, counted from the
// newest verified backup rather than from the start of this process: a
// server restarted more often than the interval (each deploy) would
// otherwise never reach its first backup. So the first one runs at start
// when there is none or the newest is older than the interval. Replicas
// take turns through the backup schedule in the database (backupSchedule):
// one backup per interval between them, whichever replica runs it. A
// failed one is alerted (critical) and tried again after the interval or
// maxBackupRetry, the shorter.
func (a *app) scheduledBackups(ctx context.Context) {
	interval := a.cfg.BackupInterval
	// Backups made before the schedule was recorded count too.
	var local time.Time
	if store, err := backupStore(a.cfg, a.log, nil); err != nil {
		a.log.Error("scheduled backups: open the backup directory", "err", err)
	} else if list, err := store.List(); err != nil {
		a.log.Error("scheduled backups: read the manifest", "err", err)
	} else {
		for _, b := range list { // oldest first; a backup that failed its check does not count
			if !b.VerifiedAt.IsZero() {
				local = b.Time
			}
		}
	}
	sched := newBackupSchedule(a.db)
	var announced time.Time
	for {
		wait, err := a.nextBackup(ctx, sched, local, interval, &announced)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Error("scheduled backups: the schedule in the database", "err", err, "retry_in", scheduleRetry.String())
			wait = scheduleRetry
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// nextBackup runs the scheduled backup if it is due and this replica's
// claim lands, and returns how long to wait before looking again (0: at
// once, the record changed).
func (a *app) nextBackup(ctx context.Context, sched *backupSchedule, local time.Time, interval time.Duration, announced *time.Time) (time.Duration, error) {
	row, err := sched.read(ctx)
	if err != nil {
		return 0, err
	}
	now := sched.now()
	due := row.due(local, interval, now)
	if due.After(now) {
		if !due.Equal(*announced) {
			*announced = due
			a.log.Info("scheduled backups: next", "at", due.UTC().Format(time.RFC3339), "last", row.describe())
		}
		return due.Sub(now), nil
	}
	if won, err := sched.claim(ctx, row); err != nil || !won {
		return 0, err // another replica moved first: read its record
	}
	var info backup.Info
	err = sched.holding(ctx, func() (err error) {
		info, err = runBackup(ctx, a.cfg, a.db, a.log, io.Discard)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: hand the backup to the other replicas now
			// rather than when the lease lapses.
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = sched.failed(release, sched.now())
			return 0, ctx.Err()
		}
		retry := min(interval, maxBackupRetry)
		a.log.Error("scheduled backup failed", "err", err)
		_ = a.notify.Notify(ctx, alert.Alert{Severity: alert.SeverityCritical, Title: "Scheduled backup failed",
			Message: err.Error(), Key: "backup-failed",
			Fields: []alert.Field{{Key: "Retry", Value: "in " + retry.String()}}})
		return 0, sched.failed(ctx, sched.now().Add(retry))
	}
	return 0, sched.done(ctx, info.Time, info.Name)
}

// every calls fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
