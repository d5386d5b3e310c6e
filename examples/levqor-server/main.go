// Command levqor-server is the Levqor reference deployment: one net/http
// service wiring every Levqor package, plus the operations CLI.
//
//	levqor-server [serve]                 run the HTTP service (default)
//	levqor-server backup                  back up, verify, prune, upload
//	levqor-server backup verify <file>    verify one backup
//	levqor-server restore <file> <target> restore a backup
//	levqor-server spend                   check the daily spend guard
//	levqor-server costs [--json]          print the cost report
//	levqor-server payouts [--dry-run]     pay partners (and: payouts partners|commissions add|list)
//	levqor-server slo --url URL           run the deployment watchdog
//	levqor-server anomaly                 flag unusual numbers from stdin
//	levqor-server doctor                  check the installation
//
// Configuration comes from the environment; see --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type command struct {
	name, usage, help string
	run               func(ctx context.Context, env *cliEnv, args []string) int
}

type cliEnv struct {
	cfg    config
	log    *slog.Logger
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "serve [--addr ADDR] [--data DIR]", "run the HTTP service", cmdServe},
		{"backup", "backup | backup verify <file>", "back up the database (verify, prune to LEVQOR_BACKUP_KEEP, upload), or verify one backup", cmdBackup},
		{"restore", "restore [--force] <file> <target>", "restore a verified backup to target: a file (SQLite) or a database name (PostgreSQL); refuses an existing target without --force and one in use always", cmdRestore},
		{"spend", "spend | spend resume --by NAME", "check today's spend against DAILY_SPEND_LIMIT, alerting once per threshold crossed (50, 80, 100%) and pausing billing at 100% until an operator runs spend resume; exit 0 within limit, 1 breached or billing still paused, 2 unknown", cmdSpend},
		{"costs", "costs [--json] [--days N]", "print the cost report (today, or the last N days)", cmdCosts},
		{"payouts", "payouts [--dry-run] [--lease D] | payouts partners add|list | payouts commissions add|list", "pay partners whose commissions reached the minimum (exit 0 all done, 1 a failure, 3 left pending); enter and list partners and commissions", cmdPayouts},
		{"slo", "slo --url URL [--rollback-cmd CMD] [--count N] [--interval D]", "probe a deployment, alert and roll it back when it fails (exit 0 success, 1 failed, 3 failed and the rollback failed too)", cmdSLO},
		{"anomaly", "anomaly [--window N] [--threshold Z]", "read one number per line from stdin and print the anomalous ones", cmdAnomaly},
		{"sitemap", "sitemap submit [--dry-run]", "announce the public pages to search engines through IndexNow (exit 0 accepted, 1 rejected or not configured, 2 rate limited)", cmdSitemap},
		{"doctor", "doctor", "check configuration, database, Redis, key files and backup freshness", cmdDoctor},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: levqor-server [command] [flags]  (default command: serve)\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-62s %s\n", c.usage, c.help)
	}
	fmt.Fprintln(w, "\nenvironment:")
	for _, v := range envVars {
		fmt.Fprintf(w, "  %-28s %s\n", v[0], v[1])
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		cfg, err := loadConfig(os.Getenv)
		if err != nil && !isHelp(args) {
			fmt.Fprintln(stderr, "levqor-server:", err)
			return 2
		}
		log := slog.New(slog.NewTextHandler(stderr, nil))
		// go-redis prints a line per failed dial, unbounded while Redis is
		// down; the server reports outages itself (once per outage), so
		// these go to debug level.
		redis.SetLogger(redisLogger{log})
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return c.run(ctx, &cliEnv{cfg: cfg, log: log, stdin: stdin, stdout: stdout, stderr: stderr}, args)
	}
	fmt.Fprintf(stderr, "levqor-server: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// redisLogger passes go-redis' internal messages to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

func isHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// newFlags returns a FlagSet whose --help prints the command's usage and
// the environment.
func newFlags(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(env.stdout, "usage: levqor-server %s\n\n%s\n\nflags:\n", c.usage, c.help)
			}
		}
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fmt.Fprintln(env.stdout, "\nenvironment:")
		for _, v := range envVars {
			fmt.Fprintf(env.stdout, "  %-26s %s\n", v[0], v[1])
		}
	}
	return fs
}

// parse handles --help (exit 0), bad flags and any argument left after
// the flags (exit 2), for commands that take no positional argument: a
// word a command does not take must not run it as if it were absent
// (`payouts dry-run`, its dashes forgotten, made a real payout run).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	code, ok := parseArgs(fs, args)
	if ok && fs.NArg() > 0 {
		arg := fs.Arg(0)
		hint := ""
		if f := fs.Lookup(strings.TrimLeft(arg, "-")); f != nil && !strings.HasPrefix(arg, "-") {
			hint = "; did you mean --" + f.Name + "?"
		}
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q (flags go before any other argument and start with -)%s\n", fs.Name(), arg, hint)
		return 2, false
	}
	return code, ok
}

// parseArgs is parse for commands that take positional arguments, left
// in fs.Args() for the command to check.
func parseArgs(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}
