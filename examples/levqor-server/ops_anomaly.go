package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/levqor/levqor/anomaly"
)

func cmdAnomaly(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "anomaly")
	window := fs.Int("window", anomaly.DefaultWindow, "rolling window")
	threshold := fs.Float64("threshold", anomaly.DefaultThreshold, "z-score threshold")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	// The library reads 0 as "use the default"; a value the operator typed
	// is used as typed or refused.
	if *window == 0 || *threshold == 0 {
		fmt.Fprintf(env.stderr, "anomaly: --window must be between 2 and %d and --threshold positive\n", anomaly.MaxWindow)
		return 2
	}
	d, err := anomaly.NewZScore(anomaly.Config{Window: *window, Threshold: *threshold})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	// Lines are read whole; one longer than maxAnomalyLine cannot be a
	// number and is refused with its line number (never a silent stop).
	br := bufio.NewReaderSize(env.stdin, maxAnomalyLine)
	line, flagged := 0, 0
	for {
		raw, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "line %d: read error: %v\n", line+1, err)
			return 2
		}
		line++
		if isPrefix {
			fmt.Fprintf(env.stderr, "line %d: longer than %d bytes; not a number\n", line, maxAnomalyLine)
			return 2
		}
		text := strings.TrimSpace(string(raw))
		if text == "" {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			if len(text) > 40 {
				text = text[:40] + "…"
			}
			fmt.Fprintf(env.stderr, "line %d: not a number: %q\n", line, text)
			return 2
		}
		if r := d.Observe(v); r.Anomaly {
			flagged++
			fmt.Fprintf(env.stdout, "line %d: %g z=%.2f grade=%s\n", line, v, r.Z, r.Grade)
		}
	}
	fmt.Fprintf(env.stdout, "%d of %d values anomalous\n", flagged, line)
	return 0
}

// maxAnomalyLine bounds one input line of `anomaly`.
const maxAnomalyLine = 4096
