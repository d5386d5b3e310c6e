package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	"github.com/unrolled/secure"
)

// peerSecret signs the peer server's tokens (HS256).
const peerSecret = "peer-assembled server secret, 32+ bytes"

// baseline serves a small JSON answer with nothing in front.
func baseline(addr string) {
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	}
	http.HandleFunc("/healthz", ok)
	http.HandleFunc("/api/ping", ok)
	_ = http.ListenAndServe(addr, nil)
}

// peer is the server a Go developer would assemble from the popular
// packages: unrolled/secure headers, ulule/limiter (in memory, by client
// IP) and a golang-jwt HS256 check, answering GET /api/me from the token's
// claims (no database, no revocation).
func peer(addr string) {
	sec := secure.New(secure.Options{
		ContentSecurityPolicy: "default-src 'self'; object-src 'none'; frame-ancestors 'none'",
		ContentTypeNosniff:    true, FrameDeny: true, ReferrerPolicy: "no-referrer",
		STSSeconds: 63072000, STSIncludeSubdomains: true,
	})
	lim := stdlib.NewMiddleware(limiter.New(memory.NewStore(), limiter.Rate{Period: time.Second, Limit: 1_000_000}))
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("levqor"),
		jwt.WithAudience("levqor-api"), jwt.WithExpirationRequired())
	key := func(*jwt.Token) (any, error) { return []byte(peerSecret), nil }
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var c jwt.RegisteredClaims
		if !ok {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if _, err := parser.ParseWithClaims(raw, &c, key); err != nil {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": c.Subject, "issued_at": c.IssuedAt.Format(time.RFC3339)})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/me", me)
	_ = http.ListenAndServe(addr, sec.Handler(lim.Handler(mux)))
}

// peerToken is a token the peer server accepts.
func peerToken() string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "levqor", Audience: jwt.ClaimStrings{"levqor-api"}, Subject: "user-1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	})
	s, err := t.SignedString([]byte(peerSecret))
	if err != nil {
		panic(err)
	}
	return s
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is something to stop at the end: a child process, or another
// server through stopFunc.
type proc struct {
	cmd      *exec.Cmd
	logs     *strings.Builder
	stopFunc func()
}

// pid is the child's process id (0 for a server stopped through stopFunc).
func (p *proc) pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// cpuTime is the user+system CPU time the processes have used so far
// (from /proc/<pid>/stat), or -1 when it cannot be read (not Linux).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || pid == 0 {
			return -1
		}
		// Fields after the command name (which may hold spaces), from
		// field 3 (state); utime and stime are fields 14 and 15, in
		// clock ticks (USER_HZ, 100 on Linux).
		rest := string(b)
		i := strings.LastIndexByte(rest, ')')
		f := strings.Fields(rest[i+1:])
		if len(f) < 13 {
			return -1
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		total += time.Duration(u+st) * 10 * time.Millisecond
	}
	return total
}

func cpuString(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

func (p *proc) stop() {
	if p.stopFunc != nil {
		p.stopFunc()
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func startProc(env []string, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	// The servers die with this command, even when it is killed (a closed
	// stdout pipe, ^C) before it can stop them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd: cmd, logs: logs}, nil
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

func waitRedis(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis on %s did not answer", addr)
}
