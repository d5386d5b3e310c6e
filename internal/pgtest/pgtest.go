// Package pgtest runs a real PostgreSQL for tests.
//
// One server per test package: the first call to Open starts PostgreSQL
// (initdb and postgres from Debian's /usr/lib/postgresql/<version>/bin) in
// a temporary data directory on a free loopback port, and every call
// creates a fresh database on it. PostgreSQL refuses to run as root, so
// under root the server runs as the "postgres" system user (setpriv). The
// package's TestMain calls Main, which stops the server by pid and removes
// its directory when the tests end.
//
// Without the binaries the test is skipped, except when CI=true: there a
// missing install is a failure, so CI can never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// superuser is the role initdb creates; tests connect as it.
const superuser = "levqor"

var (
	mu     sync.Mutex
	server *instance
	failed error
)

type instance struct {
	dir  string
	port int
	cmd  *exec.Cmd
}

// Main runs the package's tests and stops the server afterwards; call it
// from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the package's server, if one was started.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if server == nil {
		return
	}
	server.stop()
	server = nil
}

// stop shuts the server down (fast shutdown, SIGKILL after 10 s) and
// removes its directory.
func (i *instance) stop() {
	_ = i.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = i.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = i.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(i.dir)
}

// binDir finds the newest installed PostgreSQL's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (install Debian's postgresql package)")
}

// URL is a connection URL for database name on the package's server,
// starting the server on first use.
func URL(t testing.TB, name string) string {
	t.Helper()
	return (&Server{inst: get(t)}).url(name)
}

// NewDatabase creates a fresh, empty database and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", URL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return URL(t, name)
}

// Open returns a handle on a fresh database (pgx's database/sql driver),
// closed when the test ends.
func Open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db
}

func get(t testing.TB) *instance {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if server != nil {
		return server
	}
	if failed != nil {
		t.Fatalf("pgtest: %v", failed)
	}
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v (CI=true, so this fails instead of skipping)", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	inst, err := start(bin, false)
	if err != nil {
		failed = err
		t.Fatalf("pgtest: %v", err)
	}
	server = inst
	return inst
}

// asUser runs as the invoking user, or as "postgres" under root.
func asUser(dir string) (prefix []string, err error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return nil, err
	}
	return []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--"}, nil
}

// start runs initdb and postgres. Unless durable, the server trades
// durability for speed (fsync, synchronous_commit and full_page_writes
// off), which tests do not need.
func start(bin string, durable bool) (*instance, error) {
	dir, err := os.MkdirTemp("", "levqor-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	prefix, err := asUser(dir)
	if err != nil {
		return nil, err
	}
	run := func(name string, args ...string) *exec.Cmd {
		argv := append(append(append([]string{}, prefix...), filepath.Join(bin, name)), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		return cmd
	}
	if out, err := run("initdb", "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "log_min_messages=fatal"}
	if !durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := run("postgres", args...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	inst := &instance{dir: dir, port: port, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=1", superuser, port))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err == nil {
			return inst, nil
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres did not accept connections: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Server is a PostgreSQL started outside a test, e.g. by a load
// benchmark. Stop it when done.
type Server struct{ inst *instance }

// StartServer starts a private PostgreSQL on a free loopback port, with
// the default durability settings when durable (for benchmarks comparing
// engines fairly), else as for tests.
func StartServer(durable bool) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	inst, err := start(bin, durable)
	if err != nil {
		return nil, err
	}
	return &Server{inst: inst}, nil
}

// NewDatabase creates database name and returns its URL.
func (s *Server) NewDatabase(name string) (string, error) {
	db, err := sql.Open("pgx", s.url("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", err
	}
	return s.url(name), nil
}

func (s *Server) url(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.inst.port, name)
}

// Stop stops the server and removes its files.
func (s *Server) Stop() { s.inst.stop() }
