package main

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/levqor/levqor/slo"
)

func cmdSLO(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "slo")
	url := fs.String("url", "", "URL to probe (required)")
	rollback := fs.String("rollback-cmd", "", "command to run on failure (split on spaces; no shell)")
	count := fs.Int("count", slo.DefaultCount, "probes")
	interval := fs.Duration("interval", slo.DefaultInterval, "pause between probes")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *url == "" {
		fmt.Fprintln(env.stderr, "slo: --url is required")
		return 2
	}
	// The library reads 0 as "use the default"; a value the operator typed
	// is used as typed or refused.
	if *count < 1 || *interval <= 0 {
		fmt.Fprintln(env.stderr, "slo: --count must be at least 1 and --interval positive")
		return 2
	}
	notifier, err := opsNotifier(env.cfg, env.log)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	// The name goes into logs and alerts: without the URL's password.
	name := *url
	if u, err := neturl.Parse(*url); err == nil {
		name = u.Redacted()
	}
	cfg := slo.WatchdogConfig{
		Name: name, URL: *url, Count: *count, Interval: *interval,
		LatencyThreshold: env.cfg.SLOLatency, FailureLimit: env.cfg.SLOFailures, Logger: env.log,
		Notifier: notifier,
	}
	if *rollback != "" {
		cmd, err := slo.NewCommand(slo.CommandConfig{Argv: strings.Fields(*rollback)})
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return 2
		}
		cfg.Rollbacker = cmd
	}
	w, err := slo.NewWatchdog(cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 2
	}
	rep, err := w.Run(ctx)
	for _, p := range rep.Probes {
		fmt.Fprintf(env.stdout, "probe %d: %-5s %4d %8v %s\n", p.N, p.Outcome, p.Status, p.Latency.Round(time.Millisecond), p.Err)
	}
	fmt.Fprintf(env.stdout, "verdict: %s (failures %d, errors %d, rolled back %v)\n", rep.Verdict, rep.Failures, rep.Errors, rep.RolledBack)
	if err != nil {
		fmt.Fprintln(env.stderr, err) // the library's errors name it already
	}
	switch {
	case rep.Verdict == slo.VerdictSuccess:
		return 0
	case errors.Is(err, slo.ErrRollback):
		return sloRollbackFailed
	}
	return 1
}

// sloRollbackFailed is slo's exit code when the deployment failed and so
// did its rollback: the one outcome that leaves a broken deployment
// serving, so a pipeline can tell it from a failure rolled back.
const sloRollbackFailed = 3
