package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/redis/go-redis/v9"
)

// redisPersistent reports whether Redis keeps data across a restart: an
// append-only file or RDB snapshots. An error counts as not persistent
// (managed Redis services may refuse CONFIG; the warning says why to check).
func redisPersistent(ctx context.Context, c redis.UniversalClient) bool {
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false
	}
	save, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		return false
	}
	return aof["appendonly"] == "yes" || strings.TrimSpace(save["save"]) != ""
}

func cmdDoctor(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "doctor")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg := env.cfg
	pass, fail := 0, 0
	check := func(name string, err error) {
		if err != nil {
			fail++
			fmt.Fprintf(env.stdout, "FAIL  %-22s %v\n", name, err)
			return
		}
		pass++
		fmt.Fprintf(env.stdout, "PASS  %s\n", name)
	}
	_, cerr := loadConfig(os.Getenv)
	check("configuration", cerr)
	db, err := openDB(cfg)
	check("database", err)
	if err == nil {
		var ok string
		err = db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&ok)
		if err == nil && ok != "ok" {
			err = errors.New(ok)
		}
		check("database integrity", err)
		var v int
		v, err = appliedVersion(ctx, db)
		if err == nil && v != schemaVersion() {
			err = fmt.Errorf("schema version %d, this binary expects %d (start the server once to migrate)", v, schemaVersion())
		}
		check("schema version", err)
		db.Close()
	}
	warnings := 0
	warn := func(format string, a ...any) {
		warnings++
		fmt.Fprintf(env.stdout, "WARN  "+format+"\n", a...)
	}
	if cfg.RedisURL != "" {
		c, err := newRedis(cfg.RedisURL)
		if err == nil {
			err = c.Ping(ctx).Err()
			if err == nil && !redisPersistent(ctx, c) {
				warn("redis has no persistence (appendonly no, save \"\"): a restart forgets every revoked token and rate limit; see README \"Running several replicas\"")
			}
			c.Close()
		}
		check("redis", err)
	}
	switch {
	case cfg.OpsAddr == "":
		warn("/metrics is served on the public port (set LEVQOR_OPS_ADDR=127.0.0.1:9090 to move it off)")
	case cfg.OpsToken != "":
		fmt.Fprintf(env.stdout, "INFO  ops listener on %s, bearer-token protected\n", cfg.OpsAddr)
	default:
		fmt.Fprintf(env.stdout, "INFO  ops listener on %s (loopback only)\n", cfg.OpsAddr)
	}
	if tags, _ := filepath.Glob(filepath.Join(cfg.BackupDir, "*.hmac")); len(tags) > 0 && cfg.BackupKey == nil {
		check("backup key", fmt.Errorf("%d backups carry HMAC tags but LEVQOR_BACKUP_KEY is not set: their authenticity cannot be checked", len(tags)))
	}
	if cfg.JWTSecret == "" {
		_, err := loadSecret(filepath.Join(cfg.DataDir, "jwt-ed25519.key"))
		check("signing key file", err)
	}
	_, err = loadSecret(filepath.Join(cfg.DataDir, "dsar.key"))
	check("dsar key file", err)
	store, err := backupStore(cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		var list []backup.Info
		list, err = store.List()
		switch {
		case err != nil:
		case len(list) == 0:
			err = errors.New("no backups yet (run: levqor-server backup)")
		case time.Since(list[len(list)-1].Time) > 26*time.Hour:
			err = fmt.Errorf("newest backup is %v old", time.Since(list[len(list)-1].Time).Round(time.Hour))
		default:
			_, err = store.Verify(ctx, list[len(list)-1].Name)
		}
	}
	check("backup freshness", err)
	if cfg.TelegramToken == "" {
		fmt.Fprintln(env.stdout, "INFO  alerts go to the log (TELEGRAM_BOT_TOKEN not set)")
	}
	fmt.Fprintf(env.stdout, "%d passed, %d failed, %d warnings\n", pass, fail, warnings)
	if fail > 0 {
		return 1
	}
	return 0
}
