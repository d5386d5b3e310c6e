package slo_test

import (
	"context"
	"net/http"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/slo"
)

// Example_readme is the slo section of the README, compiled.
func Example_readme() {
	ctx := context.Background()
	var notifier alert.Notifier = alert.NewSlog(nil)
	var handler http.Handler = http.NotFoundHandler()
	// README:begin
	rollback, _ := slo.NewCommand(slo.CommandConfig{Argv: []string{"./deploy.sh", "rollback"}})
	w, _ := slo.NewWatchdog(slo.WatchdogConfig{
		Name: "api", URL: "http://127.0.0.1:8080/healthz", // 5 probes, 10s apart, 200ms threshold
		Rollbacker: rollback, Notifier: notifier,
	})
	report, err := w.Run(ctx) // report.Verdict: success | failed | inconclusive | error

	tr, _ := slo.NewTracker(slo.TrackerConfig{Name: "api", Objective: 0.999, LatencyThreshold: 300 * time.Millisecond, Notifier: notifier})
	defer tr.Close()
	handler = tr.Middleware(handler)         // good = final status non-5xx and under the threshold
	st := tr.Status()                        // SLI, BudgetRemaining, BurnRates
	p, ok := tr.Percentiles(0.5, 0.95, 0.99) // durations over the last hour
	// README:end
	_, _, _, _, _ = report, err, st, p, ok
}
