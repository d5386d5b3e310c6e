// Package slo watches service level objectives in two ways.
//
// # Quick start
//
//	tr, _ := slo.NewTracker(slo.TrackerConfig{Name: "api", Objective: 0.999, Notifier: alerts})
//	defer tr.Close()
//	handler = tr.Middleware(handler)
//	st := tr.Status() // SLI, BudgetRemaining, BurnRates
//
// # Design
//
// Watchdog probes a freshly deployed service Count times (default 5, every
// 10s; an HTTP GET by default). A probe fails when it errors, answers
// non-2xx or is slower than LatencyThreshold (default 200ms); a probe that
// could not measure (ErrUnmeasurable) is an error, counted apart. The
// verdict follows Flagger/Argo Rollouts: VerdictFailed when failures >=
// FailureLimit (default 3), which calls the Rollbacker once (Command,
// Webhook or a RollbackFunc) and alerts; VerdictError after ErrorLimit
// consecutive errors; VerdictInconclusive when fewer than half the probes
// were measured or the run was cancelled; VerdictSuccess otherwise. Every
// probe is logged and returned in the Report.
//
// Tracker records request outcomes (Record, Observe, or the Middleware) for
// an SLO such as 99.9% over 30 days, and computes the SLI, the remaining
// error budget and the burn rates of the SRE Workbook's multi-window,
// multi-burn-rate alerts (1h/5m at 14.4 and 6h/30m at 6 page; 1d/2h at 3
// and 3d/6h at 1 open a ticket). A pair fires only when both its windows
// burn faster than its factor and the long window holds at least MinEvents
// events. Alerts go out when a pair starts or stops firing, never per
// request. Memory is fixed (time buckets, not requests); recording is O(1)
// and allocation-free. Percentiles gives p50/p95/p99 latency over the last
// hour from bounded histograms.
package slo
