package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/levqor/levqor/tokens"
)

// TestDefaultPGO checks the CPU profile go build optimises the server with
// (default.pgo, picked by -pgo=auto): a profile of the server under load
// whose samples fall in today's request path. A profile of something else,
// or one older than a rename of these functions, would still build but
// optimise nothing (bench/README "Profile-guided optimisation" says how to
// make a new one).
func TestDefaultPGO(t *testing.T) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", "default.pgo").CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof default.pgo: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("Type: cpu")) {
		t.Fatalf("default.pgo is not a CPU profile:\n%.500s", out)
	}
	cum := pprofCumShares(t, out)
	// The server's own name for a function, as its binary (package main)
	// names it: the test binary names main's functions by import path.
	name := func(f any) string {
		n := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
		return strings.Replace(n, "github.com/levqor/levqor/examples/levqor-server.", "main.", 1)
	}
	for _, tc := range []struct {
		fn  any
		min float64 // percent of the profile's samples under the function
	}{
		{(*app).me, 0.5},
		{(*app).login, 0.5},
		{writeBody, 0.5},
		{(*countingLimiter).Allow, 0.5},
		{(*tokens.Manager).Verify, 1},
	} {
		fn := name(tc.fn)
		t.Run(fn, func(t *testing.T) {
			got, ok := cum[fn]
			if !ok {
				t.Fatalf("default.pgo has no samples in %s: made before a rename, or of another workload", fn)
			}
			if got < tc.min {
				t.Errorf("%s holds %.2f%% of default.pgo's samples, want at least %.2f%%", fn, got, tc.min)
			}
		})
	}
}

// pprofCumShares reads `go tool pprof -top -cum` output: each function's
// cumulative share of the samples, in percent.
func pprofCumShares(t *testing.T, top []byte) map[string]float64 {
	t.Helper()
	// flat flat% sum% cum cum% name [(inline)]
	row := regexp.MustCompile(`^\s*\S+\s+\S+%\s+\S+%\s+\S+\s+(\S+)%\s+(\S+)`)
	shares := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(top))
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("pprof row %q: %v", sc.Text(), err)
		}
		shares[m[2]] = v
	}
	if len(shares) == 0 {
		t.Fatalf("no function rows in pprof's output:\n%.500s", top)
	}
	return shares
}
