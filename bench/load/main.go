// Command load measures the reference server under load on loopback and
// prints requests/s and p50/p99 latency per scenario, next to a bare
// net/http server and a server assembled from the popular peer packages,
// measured in the same run:
//
//	cd bench && go run ./load [-duration 5s] [-concurrency 64] [-rounds 3] [-generator wrk|go] [-profile dir] [-pgo auto|off]
//
// Scenarios: the bare baseline (GET /api/ping); the peer-assembled server
// (unrolled/secure, ulule/limiter, golang-jwt HS256; GET /api/me from the
// token, no database); levqor-server with its embedded defaults (SQLite,
// EdDSA): GET /healthz through the full middleware chain, GET /api/me
// (verify, revocation check, rate limit by subject, the account) and POST
// /api/auth/login (argon2id, session and audit rows, a token pair); GET
// /api/me with LEVQOR_JWT_SECRET (HS256); GET /api/me and login with all
// state in PostgreSQL (a private server with default durability, when the
// postgresql binaries are installed); GET /api/me with Redis (a
// redis-server from PATH). Every request goes to 127.0.0.1; each scenario
// runs for a fixed time. The GET scenarios are driven by wrk (Debian
// package wrk; -generator go uses net/http clients in this process, which
// cost the shared CPU about as much per request as the server does, so
// they compress the differences between servers); logins always use the
// in-process clients. With -profile, a CPU profile of levqor-server is
// taken over each of its scenarios (from /debug/pprof on its ops listener)
// and written to dir; merged, they make the server's default.pgo
// (bench/README "Profile-guided optimisation"). The server is built as go
// build builds it, with that profile; -pgo off builds it without, for
// comparison.
package main

import (
	"errors"
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
	"time"

	"github.com/levqor/levqor/internal/pgtest"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "baseline-server" {
		baseline(os.Args[2])
		return
	}
	if len(os.Args) > 2 && os.Args[1] == "peer-server" {
		peer(os.Args[2])
		return
	}
	o := options{}
	flag.DurationVar(&o.d, "duration", 5*time.Second, "time per scenario")
	flag.IntVar(&o.conc, "concurrency", 64, "concurrent clients (connections)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the interleaved scenarios")
	flag.StringVar(&o.repo, "repo", "..", "the Levqor repository root (holding go.mod), to build the server from")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of levqor-server per scenario to this directory")
	flag.StringVar(&o.generator, "generator", "wrk", `load generator for the GET scenarios: "wrk" (from PATH) or "go" (net/http clients in this process); logins always use "go"`)
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.StringVar(&o.pgo, "pgo", "auto", `go build's -pgo for levqor-server: "auto" (its default.pgo) or "off"`)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type options struct {
	d                        time.Duration
	conc, rounds, threads    int
	repo, profile, generator string
	pgo                      string
}

// scenario is one measured request pattern against a running server.
type scenario struct {
	name               string
	method, url, token string
	body               string
	conc               int
	ops                string // the server's ops listener, for profiles; "" for none
	pids               []int  // the server processes whose CPU time is charged to it
	results            []result
}

// runner holds one run's state: the built binary, the servers and the
// scenarios.
type runner struct {
	options
	tmp, bin, self string
	wrk            string // the wrk binary, "" to use the in-process clients
	procs          []*proc
	scenarios      []*scenario
	once           []*scenario // measured in the first round only (slow or costly)
}

func run(o options) error {
	tmp, err := os.MkdirTemp("", "levqor-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &runner{options: o, tmp: tmp, bin: filepath.Join(tmp, "levqor-server")}
	switch o.generator {
	case "wrk":
		if r.wrk = wrkPath(); r.wrk == "" {
			return errors.New(`wrk is not on PATH (Debian: apt-get install wrk); use -generator go for the in-process clients`)
		}
		if o.d < time.Second || o.d%time.Second != 0 {
			return fmt.Errorf("-duration %v: wrk takes whole seconds", o.d)
		}
	case "go":
	default:
		return fmt.Errorf("-generator %q: want wrk or go", o.generator)
	}
	defer func() {
		for _, p := range r.procs {
			p.stop()
		}
	}()
	build := exec.Command("go", "build", "-pgo="+o.pgo, "-o", r.bin, "./examples/levqor-server")
	build.Dir = o.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build server in %s: %v\n%s", o.repo, err, out)
	}
	if r.self, err = os.Executable(); err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	for _, step := range []func() error{r.baselines, r.sqlite, r.postgres, r.redis} {
		if err := step(); err != nil {
			return err
		}
	}
	// Rounds interleave the scenarios, so a slow minute on the shared
	// machine hits every scenario of a round alike: compare within a round.
	for round := range r.rounds {
		for _, sc := range r.scenarios {
			r.measure(sc, round)
		}
		if round == 0 {
			for _, sc := range r.once {
				r.measure(sc, round)
			}
		}
	}
	return r.report()
}

// baselines: bare net/http and the peer-assembled server.
func (r *runner) baselines() error {
	for _, b := range []struct{ cmd, name, path, token string }{
		{"baseline-server", "bare net/http GET /api/ping", "/api/ping", ""},
		{"peer-server", "peer-assembled GET /api/me (HS256)", "/api/me", peerToken()},
	} {
		addr := freeAddr()
		p, err := startProc(nil, r.self, b.cmd, addr)
		if err != nil {
			return err
		}
		r.procs = append(r.procs, p)
		if err := waitHTTP("http://" + addr + "/api/ping"); err != nil {
			return err
		}
		r.scenarios = append(r.scenarios, &scenario{name: b.name, method: http.MethodGet, url: "http://" + addr + b.path, token: b.token, conc: r.conc, pids: []int{p.pid()}})
	}
	return nil
}

// server is a running levqor-server.
type server struct {
	url, ops string
	pids     []int
}

func (r *runner) serve(extra ...string) (*server, error) {
	addr, ops := freeAddr(), freeAddr()
	env := append([]string{"LEVQOR_ADDR=" + addr, "LEVQOR_OPS_ADDR=" + ops,
		"LEVQOR_DATA_DIR=" + filepath.Join(r.tmp, "data-"+addr[strings.LastIndex(addr, ":")+1:]),
		"LEVQOR_RATE_LIMIT=1000000/s", "LEVQOR_AUTH_RATE_LIMIT=1000000/s"}, extra...)
	p, err := startProc(env, r.bin, "serve")
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	s := &server{url: "http://" + addr, ops: "http://" + ops, pids: []int{p.pid()}}
	if err := waitHTTP(s.url + "/healthz"); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, p.logs.String())
	}
	return s, nil
}

// add registers a scenario on s; once: only in the first round.
func (r *runner) add(s *server, name, method, path, token, body string, conc int, once bool) {
	sc := &scenario{name: name, method: method, url: s.url + path, token: token, body: body, conc: conc, ops: s.ops, pids: s.pids}
	if once {
		r.once = append(r.once, sc)
	} else {
		r.scenarios = append(r.scenarios, sc)
	}
}

// measure runs one scenario once, profiling it (first round) when asked.
func (r *runner) measure(sc *scenario, round int) {
	done := make(chan struct{})
	if r.profile != "" && round == 0 && sc.ops != "" {
		secs := max(1, int(r.d.Seconds())-1)
		go func() {
			defer close(done)
			if err := saveProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", sc.ops, secs), filepath.Join(r.profile, fileName(sc.name)+".pprof")); err != nil {
				fmt.Fprintln(os.Stderr, "load: profile:", err)
			}
		}()
	} else {
		close(done)
	}
	cpu0 := cpuTime(sc.pids)
	var res result
	if r.wrk != "" && sc.method == http.MethodGet {
		res = wrkHammer(r.wrk, sc.name, sc.url, sc.token, sc.conc, r.threads, r.d)
	} else {
		res = hammerReq(sc.name, sc.method, sc.url, sc.token, sc.body, sc.conc, r.d)
	}
	if cpu0 >= 0 && res.reqs > 0 {
		if cpu1 := cpuTime(sc.pids); cpu1 >= 0 {
			res.cpu = (cpu1 - cpu0) / time.Duration(res.reqs)
		}
	}
	sc.results = append(sc.results, res)
	<-done
}

func saveProfile(url, path string) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fileName(scenario string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, scenario)
}

// sqlite: the embedded defaults (EdDSA), then HS256.
func (r *runner) sqlite() error {
	s, err := r.serve()
	if err != nil {
		return err
	}
	token, err := login(s.url)
	if err != nil {
		return err
	}
	r.add(s, "levqor GET /healthz (full chain)", http.MethodGet, "/healthz", "", "", r.conc, false)
	r.add(s, "levqor GET /api/me (SQLite, EdDSA)", http.MethodGet, "/api/me", token, "", r.conc, false)
	r.add(s, "levqor POST /api/auth/login (SQLite)", http.MethodPost, "/api/auth/login", "", loginScenarioBody, loginConcurrency, true)

	hs, err := r.serve("LEVQOR_JWT_SECRET=load test HS256 secret of 32+ bytes")
	if err != nil {
		return err
	}
	if token, err = login(hs.url); err != nil {
		return err
	}
	r.add(hs, "levqor GET /api/me (SQLite, HS256)", http.MethodGet, "/api/me", token, "", r.conc, false)
	return nil
}

// postgres: all state in a private PostgreSQL with default durability.
func (r *runner) postgres() error {
	pg, err := pgtest.StartServer(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: skipping the PostgreSQL scenarios:", err)
		return nil
	}
	r.procs = append(r.procs, &proc{stopFunc: pg.Stop})
	dbURL, err := pg.NewDatabase("levqor_load")
	if err != nil {
		return err
	}
	s, err := r.serve("LEVQOR_DATABASE_URL=" + dbURL)
	if err != nil {
		return err
	}
	token, err := login(s.url)
	if err != nil {
		return err
	}
	r.add(s, "levqor GET /api/me (PostgreSQL, EdDSA)", http.MethodGet, "/api/me", token, "", r.conc, true)
	r.add(s, "levqor POST /api/auth/login (PostgreSQL)", http.MethodPost, "/api/auth/login", "", loginScenarioBody, loginConcurrency, true)
	return nil
}

// redis: revocations and rate limits in a local redis-server.
func (r *runner) redis() error {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: redis-server not on PATH; skipping the Redis scenario")
		return nil
	}
	raddr := freeAddr()
	_, port, _ := net.SplitHostPort(raddr)
	rp, err := startProc(nil, redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err != nil {
		return err
	}
	r.procs = append(r.procs, rp)
	if err := waitRedis(raddr); err != nil {
		return err
	}
	s, err := r.serve("LEVQOR_REDIS_URL=redis://" + raddr)
	if err != nil {
		return err
	}
	token, err := login(s.url)
	if err != nil {
		return err
	}
	s.pids = append(s.pids, rp.pid()) // the Redis server works for this scenario too
	r.add(s, "levqor GET /api/me (SQLite + Redis, EdDSA)", http.MethodGet, "/api/me", token, "", r.conc, false)
	return nil
}

// report prints every scenario's median with its ratios to the bare
// server and to the peer-assembled one (medians of the per-round ratios,
// each round's ratio listed), and fails when any request failed.
func (r *runner) report() error {
	gen := "in-process net/http clients"
	if r.wrk != "" {
		gen = fmt.Sprintf("wrk, %d thread(s), for GETs; in-process clients for logins", r.threads)
	}
	fmt.Printf("%d clients (login: %d), %v per scenario, %d rounds, 127.0.0.1, %s; levqor-server built with -pgo=%s; medians, ratios per round in brackets\n\n", r.conc, loginConcurrency, r.d, r.rounds, gen, r.pgo)
	fmt.Printf("%-44s %8s %9s %9s %6s %9s  %s  %s\n", "scenario", "req/s", "p50", "p99", "errors", "server", "×bare / ×peer (req/s)", "×peer (server CPU/req)")
	bare, peer := r.scenarios[0], r.scenarios[1]
	for _, sc := range append(append([]*scenario{}, r.scenarios...), r.once...) {
		med := median(sc.results, func(x result) float64 { return x.rps })
		p50 := median(sc.results, func(x result) float64 { return float64(x.p50) })
		p99 := median(sc.results, func(x result) float64 { return float64(x.p99) })
		var errs int64
		for _, x := range sc.results {
			errs += x.errs
		}
		cpu := median(sc.results, func(x result) float64 { return float64(x.cpu) })
		cmp := "(no peer)" // logins: neither baseline logs in
		if sc.method == http.MethodGet {
			cmp = ratios(sc, bare, rps) + " / " + ratios(sc, peer, rps) + "  " + ratios(sc, peer, cpuPerReq)
		}
		fmt.Printf("%-44s %8.0f %9v %9v %6d %9s  %s\n", sc.name, med, time.Duration(p50).Round(time.Microsecond), time.Duration(p99).Round(time.Microsecond), errs,
			cpuString(time.Duration(cpu)), cmp)
	}
	for _, sc := range append(append([]*scenario{}, r.scenarios...), r.once...) {
		for _, x := range sc.results {
			if x.errs > 0 {
				return fmt.Errorf("%s: %d failed requests", x.name, x.errs)
			}
		}
	}
	return nil
}

func rps(x result) float64       { return x.rps }
func cpuPerReq(x result) float64 { return float64(x.cpu) }

// ratios is sc against base by f, round by round: the median and each
// round's.
func ratios(sc, base *scenario, f func(result) float64) string {
	var per []float64
	for i, x := range sc.results {
		if f(base.results[i]) == 0 {
			return "-"
		}
		per = append(per, f(x)/f(base.results[i]))
	}
	parts := make([]string, len(per))
	for i, v := range per {
		parts[i] = fmt.Sprintf("%.2f", v)
	}
	sorted := slices.Clone(per)
	slices.Sort(sorted)
	return fmt.Sprintf("%.2fx [%s]", sorted[len(sorted)/2], strings.Join(parts, " "))
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, x := range rs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
