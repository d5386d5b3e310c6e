// Package redistest starts a Redis for tests.
//
// Each call to Start runs a private redis-server bound to 127.0.0.1 on a free
// port, without persistence, and stops it (by pid) when the test ends. When
// the redis-server binary is not on PATH, Start serves the test with
// miniredis (an in-process Redis speaking the same protocol, Lua included)
// so the Redis paths run on any machine; under CI=true a missing binary is a
// failure instead, so CI always tests the real server. A few tests need the
// real server for what miniredis cannot do (freezing the process with
// SIGSTOP, persistence across a kill, keys expiring on the wall clock,
// CONFIG GET): they call RequireReal, which skips them on miniredis.
package redistest

import (
	"github.com/alicebob/miniredis/v2"

	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is a running redis-server (or miniredis) owned by one test.
type Server struct {
	t       testing.TB
	bin     string
	port    int
	persist string   // data directory when persistent
	extra   []string // more redis-server arguments (cluster mode)

	mu   sync.Mutex
	cmd  *exec.Cmd
	mini *miniredis.Miniredis // when redis-server is not on PATH
}

// Real reports whether s is a real redis-server (not miniredis).
func (s *Server) Real() bool { return s.mini == nil }

// RequireReal skips the test when s is miniredis: what it tests needs a
// real redis-server process.
func (s *Server) RequireReal(why string) {
	s.t.Helper()
	if s.mini != nil {
		s.t.Skipf("redistest: needs a real redis-server (%s); install redis-server to run it", why)
	}
}

// Start runs a fresh redis-server and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartPersistent is Start with an append-only file fsynced on every write
// in a test directory: data survives Stop (even SIGKILL) and Restart.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	s := start(t, true)
	if s.mini != nil {
		s.persist = "memory" // miniredis keeps its data across Restart
	}
	return s
}

func start(t testing.TB, persist bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redistest: redis-server not found on PATH (CI=true, so this fails instead of falling back to miniredis): %v", err)
		}
		return startMini(t)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("redistest: no free port: %v", err)
	}
	s := &Server{t: t, bin: bin, port: port}
	if persist {
		s.persist = t.TempDir()
	}
	if err := s.start(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func startMini(t testing.TB) *Server {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		t.Fatalf("redistest: miniredis: %v", err)
	}
	_, port, _ := net.SplitHostPort(m.Addr())
	p, _ := strconv.Atoi(port)
	s := &Server{t: t, port: p, mini: m}
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port on the loopback interface.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL for the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Running reports whether the server is up (started and not stopped); a
// miniredis always counts as running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil || s.mini != nil
}

// Stop kills the server and waits for it to exit. It is safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mini != nil {
		s.mini.Close()
		return
	}
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a frozen process dies only once resumed
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server process with SIGSTOP: connections stay open but
// nothing is answered, as with a hung host. Thaw resumes it; Stop also
// works on a frozen server.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.RequireReal("freezing the process")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port after Stop. The data
// set starts empty unless the server was started with StartPersistent.
func (s *Server) Restart() {
	s.t.Helper()
	if s.mini != nil {
		if err := s.mini.Restart(); err != nil {
			s.t.Fatalf("redistest: restart miniredis: %v", err)
		}
		if s.persist == "" {
			s.mini.FlushAll() // like a real server without persistence
		}
		return
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("server on port %d is already running", s.port)
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	}
	if s.persist != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--dir", s.persist)
	} else {
		args = append(args, "--appendonly", "no", "--dir", os.TempDir())
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr()) == nil {
			s.cmd = cmd
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
