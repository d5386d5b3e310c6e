// Command load measures the reference server under load on loopback and
// prints requests/s and p50/p99 latency per scenario, next to a bare
// net/http server measured in the same run:
//
//	cd bench && go run ./load [-duration 5s] [-concurrency 32]
//
// Scenarios: the bare baseline; GET /healthz through the full middleware
// chain; GET /api/me with a valid token (verify, revocation check, rate
// limit keyed by subject, user lookup) and POST /api/auth/login (argon2id
// hash check, session row, token pair) with the server's state in SQLite,
// then in PostgreSQL (a private server started with initdb, default
// durability, when the postgresql binaries are installed); GET /api/me
// with Redis (a redis-server from PATH on a free loopback port). Every
// request goes to 127.0.0.1; each scenario runs for a fixed time.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "baseline-server" {
		baseline(os.Args[2])
		return
	}
	duration := flag.Duration("duration", 5*time.Second, "time per scenario")
	conc := flag.Int("concurrency", 32, "concurrent clients")
	repo := flag.String("repo", "..", "the Levqor repository root (holding go.mod), to build the server from")
	flag.Parse()
	if err := run(*duration, *conc, *repo); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// baseline serves the same JSON as /healthz with nothing in front.
func baseline(addr string) {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	_ = http.ListenAndServe(addr, nil)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd  *exec.Cmd
	logs *strings.Builder
}

func (p *proc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func startProc(env []string, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd, logs}, nil
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

type result struct {
	name     string
	reqs     int
	errs     int64
	rps      float64
	p50, p99 time.Duration
}

// hammer sends GETs from conc clients for d and measures each one.
func hammer(name, url, token string, conc int, d time.Duration) result {
	return hammerReq(name, http.MethodGet, url, token, "", conc, d)
}

// hammerReq sends method url (with a JSON body unless "") from conc
// clients for d and measures each request.
func hammerReq(name, method, url, token, body string, conc int, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				var rb io.Reader
				if body != "" {
					rb = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, url, rb)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := result{name: name, reqs: len(lat), errs: errs.Load(), rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// loginBody is the load test user's credentials.
const loginBody = `{"email":"load@example.com","password":"load test password"}`

// loginConcurrency is the number of clients logging in at once: the
// server hashes GOMAXPROCS passwords at a time and answers 503 to requests
// queued over 2 s, so more clients measure the queue, not the login.
const loginConcurrency = 4

func login(base string) (string, error) {
	body := loginBody
	res, err := http.Post(base+"/api/auth/register", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	res.Body.Close()
	res, err = http.Post(base+"/api/auth/login", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("login failed (%d)", res.StatusCode)
	}
	return out.AccessToken, nil
}

func run(d time.Duration, conc int, repo string) error {
	tmp, err := os.MkdirTemp("", "levqor-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "levqor-server")
	build := exec.Command("go", "build", "-o", bin, "./examples/levqor-server")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build server in %s: %v\n%s", repo, err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []result

	// 1. Bare net/http.
	addr := freeAddr()
	base, err := startProc(nil, self, "baseline-server", addr)
	if err != nil {
		return err
	}
	if err := waitHTTP("http://" + addr + "/healthz"); err != nil {
		base.stop()
		return err
	}
	results = append(results, hammer("bare net/http GET /healthz", "http://"+addr+"/healthz", "", conc, d))
	base.stop()

	// 2 and 3. The server in memory mode.
	serve := func(extra ...string) (*proc, string, error) {
		addr := freeAddr()
		env := append([]string{"LEVQOR_ADDR=" + addr, "LEVQOR_DATA_DIR=" + filepath.Join(tmp, "data-"+addr[strings.LastIndex(addr, ":")+1:]),
			"LEVQOR_RATE_LIMIT=1000000/s", "LEVQOR_AUTH_RATE_LIMIT=1000000/s"}, extra...)
		p, err := startProc(env, bin, "serve")
		if err != nil {
			return nil, "", err
		}
		url := "http://" + addr
		if err := waitHTTP(url + "/healthz"); err != nil {
			p.stop()
			return nil, "", fmt.Errorf("%w\n%s", err, p.logs.String())
		}
		return p, url, nil
	}
	// 2 to 4: the full chain, /api/me and login with SQLite, then with
	// PostgreSQL.
	engine := func(label string, extra ...string) error {
		p, url, err := serve(extra...)
		if err != nil {
			return err
		}
		defer p.stop()
		token, err := login(url)
		if err != nil {
			return err
		}
		if label == "SQLite" {
			results = append(results, hammer("levqor GET /healthz (full chain)", url+"/healthz", "", conc, d))
		}
		results = append(results, hammer("levqor GET /api/me ("+label+")", url+"/api/me", token, conc, d))
		results = append(results, hammerReq("levqor POST /api/auth/login ("+label+")", http.MethodPost, url+"/api/auth/login", "", loginBody, loginConcurrency, d))
		return nil
	}
	if err := engine("SQLite"); err != nil {
		return err
	}
	if pg, err := pgtest.StartServer(true); err == nil {
		dbURL, err := pg.NewDatabase("levqor_load")
		if err == nil {
			err = engine("PostgreSQL", "LEVQOR_DATABASE_URL="+dbURL)
		}
		pg.Stop()
		if err != nil {
			return err
		}
	} else {
		fmt.Fprintln(os.Stderr, "load: skipping the PostgreSQL scenarios:", err)
	}

	// 4. With Redis.
	if redisBin, err := exec.LookPath("redis-server"); err == nil {
		raddr := freeAddr()
		_, port, _ := net.SplitHostPort(raddr)
		rp, err := startProc(nil, redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err != nil {
			return err
		}
		defer rp.stop()
		if err := waitRedis(raddr); err != nil {
			return err
		}
		p, url, err := serve("LEVQOR_REDIS_URL=redis://" + raddr)
		if err != nil {
			return err
		}
		token, err := login(url)
		if err != nil {
			p.stop()
			return err
		}
		results = append(results, hammer("levqor GET /api/me (SQLite + Redis)", url+"/api/me", token, conc, d))
		p.stop()
	} else {
		fmt.Fprintln(os.Stderr, "load: redis-server not on PATH; skipping the Redis scenario")
	}

	fmt.Printf("%d clients, %v per scenario, 127.0.0.1\n\n", conc, d)
	fmt.Printf("%-44s %10s %10s %10s %8s %7s\n", "scenario", "req/s", "p50", "p99", "errors", "ratio")
	for _, r := range results {
		fmt.Printf("%-44s %10.0f %10v %10v %8d %6.2fx\n", r.name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errs, r.rps/results[0].rps)
	}
	for _, r := range results {
		if r.errs > 0 {
			return fmt.Errorf("%s: %d failed requests", r.name, r.errs)
		}
	}
	return nil
}
