package backup

import (
	"io"

	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// pgdumpMagic starts every pg_dump custom-format archive.
const pgdumpMagic = "PGDMP"

// PostgresConfig configures a Postgres source.
type PostgresConfig struct {
	// URL is the database to back up (postgres://user:password@host/db).
	// Required. Its password never appears in an error.
	URL string
	// BinDir holds pg_dump and pg_restore. Default: the newest
	// /usr/lib/postgresql/<version>/bin (Debian's layout), else PATH.
	BinDir string
	// Driver is the database/sql driver used for the restore test and
	// for creating and dropping databases; the program imports it (for
	// github.com/jackc/pgx/v5/stdlib, "pgx"). Default "pgx".
	Driver string
}

// Postgres backs up a PostgreSQL database with pg_dump (custom format,
// one consistent snapshot), and restores with pg_restore: Verify restores
// into a scratch database on the same server (created and dropped around
// the test) and runs Config.Check on it; Load restores into a named
// database. It is a Source for Store.BackupSource and the Config.Postgres
// a Store uses for ".dump" backups.
type Postgres struct {
	cfg    PostgresConfig
	u      *url.URL
	secret string // the URL's password, scrubbed from errors
}

var _ Source = (*Postgres)(nil)

// NewPostgres validates cfg and finds the client binaries.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, errors.New("backup: PostgresConfig.URL is not a postgres://host/database URL")
	}
	if cfg.Driver == "" {
		cfg.Driver = "pgx"
	}
	if cfg.BinDir == "" {
		cfg.BinDir = pgBinDir()
	}
	for _, b := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(filepath.Join(cfg.BinDir, b)); err != nil {
			if _, err := exec.LookPath(b); err != nil {
				return nil, fmt.Errorf("backup: %s not found (install Debian's postgresql-client): %w", b, err)
			}
		}
	}
	pw, _ := u.User.Password()
	return &Postgres{cfg: cfg, u: u, secret: pw}, nil
}

// pgBinDir is the newest Debian PostgreSQL bin directory, or "" for PATH.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	if len(dirs) > 0 {
		return dirs[0]
	}
	return ""
}

func (p *Postgres) bin(name string) string {
	if p.cfg.BinDir != "" {
		if path := filepath.Join(p.cfg.BinDir, name); fileExists(path) {
			return path
		}
	}
	return name
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Ext implements Source.
func (*Postgres) Ext() string { return ".dump" }

// Dump implements Source with pg_dump --format=custom.
func (p *Postgres) Dump(ctx context.Context, path string) (int, error) {
	return 0, p.run(ctx, nil, p.bin("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file="+path, "--dbname="+p.cfg.URL)
}

// dbURL is the URL of another database on the same server.
func (p *Postgres) dbURL(name string) string {
	u := *p.u
	u.Path = "/" + name
	return u.String()
}

// admin opens the server's maintenance database (postgres).
func (p *Postgres) admin() (*sql.DB, error) {
	db, err := sql.Open(p.cfg.Driver, p.dbURL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("backup: open the postgres maintenance database (driver %q imported?): %w", p.cfg.Driver, err)
	}
	return db, nil
}

// test restores the dump read from r into a scratch database and runs check.
func (p *Postgres) test(ctx context.Context, r io.Reader, check func(context.Context, *sql.DB) error) error {
	admin, err := p.admin()
	if err != nil {
		return err
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	scratch := "levqor_verify_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+scratch); err != nil {
		return fmt.Errorf("create scratch database: %s", p.scrub(err.Error()))
	}
	defer func() {
		_, _ = admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+scratch+" WITH (FORCE)")
	}()
	if err := p.run(ctx, r, p.bin("pg_restore"), "--exit-on-error", "--no-owner", "--no-privileges", "--dbname="+p.dbURL(scratch)); err != nil {
		return err
	}
	db, err := sql.Open(p.cfg.Driver, p.dbURL(scratch))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return errors.New(p.scrub(err.Error()))
	}
	if check != nil {
		if err := check(ctx, db); err != nil {
			return fmt.Errorf("schema check: %w", err)
		}
	}
	return nil
}

// load restores the dump read from r into the database target on the
// same server: a new database, or (overwrite) a replacement of an existing
// one that nobody is connected to.
func (p *Postgres) load(ctx context.Context, r io.Reader, target string, overwrite bool) error {
	if !validDBName(target) {
		return fmt.Errorf("backup: %q is not a plain database name", target)
	}
	admin, err := p.admin()
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, target).Scan(&exists); err != nil {
		return errors.New(p.scrub(err.Error()))
	}
	if exists {
		if !overwrite {
			return fmt.Errorf("%w: database %s (set Overwrite to replace it)", ErrTargetExists, target)
		}
		var users int
		if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, target).Scan(&users); err != nil {
			return errors.New(p.scrub(err.Error()))
		}
		if users > 0 {
			return fmt.Errorf("%w: database %s has %d open connections", ErrInUse, target, users)
		}
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+target); err != nil {
			return fmt.Errorf("%w: drop %s: %s", ErrInUse, target, p.scrub(err.Error()))
		}
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+target); err != nil {
		return errors.New(p.scrub(err.Error()))
	}
	return p.run(ctx, r, p.bin("pg_restore"), "--exit-on-error", "--no-owner", "--no-privileges", "--dbname="+p.dbURL(target))
}

func validDBName(n string) bool {
	if n == "" || len(n) > 63 {
		return false
	}
	for i, r := range n {
		if !(r == '_' || r >= 'a' && r <= 'z' || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// run executes a client binary, reading stdin when set; its output (with the password scrubbed)
// is the error on failure. The context kills it.
func (p *Postgres) run(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(string(out))
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return fmt.Errorf("%s: %v: %s", filepath.Base(name), err, p.scrub(msg))
	}
	return nil
}

func (p *Postgres) scrub(s string) string {
	if p.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, p.secret, "<redacted>")
}
