package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkPath is the wrk binary on PATH, or "" when there is none.
func wrkPath() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

// wrkHammer runs GETs through wrk (a C load generator: one epoll loop per
// thread, far cheaper per request than Go's net/http client, so on a
// shared machine more of the CPU goes to the server being measured).
func wrkHammer(bin, name, url, token string, conc, threads int, d time.Duration) result {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conc), "-d", strconv.Itoa(int(d/time.Second)) + "s", "--latency", "--timeout", "10s"}
	if token != "" {
		args = append(args, "-H", "Authorization: Bearer "+token)
	}
	out, err := exec.Command(bin, append(args, url)...).CombinedOutput()
	r := result{name: name}
	if err == nil {
		err = parseWrk(out, &r)
	}
	if err != nil {
		// A failed run counts as a failed request: the report fails on it.
		fmt.Fprintf(os.Stderr, "load: %s: wrk: %v\n%s", name, err, out)
		r.errs++
	}
	return r
}

// parseWrk reads wrk's --latency report: the request count, requests/s,
// the 50th and 99th percentiles, socket errors and non-2xx answers.
func parseWrk(out []byte, r *result) error {
	var haveReqs, haveRPS bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := wrkDuration(f[1])
			if err != nil {
				return err
			}
			if f[0] == "50%" {
				r.p50 = d
			} else {
				r.p99 = d
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return err
			}
			r.reqs, haveReqs = n, true
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return err
			}
			r.rps, haveRPS = v, true
		case len(f) == 5 && f[0] == "Non-2xx":
			n, err := strconv.Atoi(f[4])
			if err != nil {
				return err
			}
			r.errs += int64(n)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				if err != nil {
					return err
				}
				r.errs += int64(n)
			}
		}
	}
	if !haveReqs || !haveRPS {
		return fmt.Errorf("wrk: no request count in its output: %q", out)
	}
	return nil
}

// wrkDuration parses wrk's latency figures: "635.00us", "5.01ms", "1.20s".
func wrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk: unknown latency %q", s)
}
