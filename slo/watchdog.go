package slo

import (
	"github.com/levqor/levqor/internal/defaults"

	"net/url"

	"github.com/levqor/levqor/internal/backoff"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/levqor/levqor/alert"
)

// Defaults for WatchdogConfig.
const (
	DefaultCount            = 5
	DefaultInterval         = 10 * time.Second
	DefaultLatencyThreshold = 200 * time.Millisecond
	DefaultFailureLimit     = 3
	DefaultErrorLimit       = 3
	DefaultProbeTimeout     = 5 * time.Second
)

// ErrUnmeasurable marks a probe error that says nothing about the target
// (the probe itself could not run, a metrics source was down). Wrap it, and
// the watchdog counts an Error instead of a Failure.
var ErrUnmeasurable = errors.New("slo: could not measure")

// ErrRollback wraps a failed rollback.
var ErrRollback = errors.New("slo: rollback failed")

// Probe checks the target once. It returns the HTTP status when there is
// one (a status outside 200-299 is a failure) and an error when the check
// failed; errors wrapping ErrUnmeasurable are counted apart. The watchdog
// measures the latency around the call.
type Probe func(ctx context.Context) (status int, err error)

// HTTPProbe returns a Probe that GETs target. Any response is a
// measurement; a transport error or timeout is a failure (the target did
// not answer in time), and only a request that cannot be built is
// unmeasurable. Redirects are followed only within target's origin: one to
// another scheme, host or port is a failure (status 421), never the other
// host's answer.
func HTTPProbe(client *http.Client, target string) Probe {
	u, err := url.Parse(target)
	if err != nil {
		return func(context.Context) (int, error) {
			return 0, fmt.Errorf("%w: the probe URL does not parse", ErrUnmeasurable)
		}
	}
	return httpProbe(client, u, false)
}

// ErrCrossOrigin reports a redirect to another origin, not followed.
var ErrCrossOrigin = errors.New("slo: probe redirected to another origin")

func httpProbe(client *http.Client, target *url.URL, crossOrigin bool) Probe {
	if client == nil {
		client = http.DefaultClient
	}
	if !crossOrigin {
		c := *client
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != target.Scheme || req.URL.Host != target.Host {
				return fmt.Errorf("%w: %s://%s", ErrCrossOrigin, req.URL.Scheme, req.URL.Host)
			}
			if len(via) >= 10 {
				return errors.New("slo: probe stopped after 10 redirects")
			}
			return nil
		}
		client = &c
	}
	return func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrUnmeasurable, err)
		}
		res, err := client.Do(req)
		if errors.Is(err, ErrCrossOrigin) {
			// Measured, and bad: a probe answered from elsewhere says
			// nothing about this deployment.
			return http.StatusMisdirectedRequest, nil
		}
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return res.StatusCode, nil
	}
}

// Outcome classifies one probe.
type Outcome int

// Outcomes: pass (measured and good), fail (measured and bad), error
// (could not measure).
const (
	OutcomePass Outcome = iota
	OutcomeFail
	OutcomeError
)

func (o Outcome) String() string {
	return [...]string{"pass", "fail", "error"}[o]
}

// Verdict is the watchdog's conclusion.
type Verdict int

// Verdicts, in Flagger/Argo Rollouts vocabulary.
const (
	// VerdictInconclusive: fewer than half the probes could be measured, or the
	// run was cancelled. No rollback.
	VerdictInconclusive Verdict = iota
	// VerdictSuccess: failures stayed below FailureLimit.
	VerdictSuccess
	// VerdictFailed: failures reached FailureLimit; the Rollbacker was called.
	VerdictFailed
	// VerdictError: ErrorLimit consecutive probes could not be measured.
	VerdictError
)

func (v Verdict) String() string {
	return [...]string{"inconclusive", "success", "failed", "error"}[v]
}

// ProbeResult is one probe in a Report.
type ProbeResult struct {
	N       int
	At      time.Time
	Latency time.Duration
	Status  int
	Outcome Outcome
	Err     string
}

// Report is the outcome of one Run.
type Report struct {
	Verdict    Verdict
	Probes     []ProbeResult
	Passes     int
	Failures   int
	Errors     int
	RolledBack bool
}

// WatchdogConfig configures a Watchdog. Zero fields take the defaults.
type WatchdogConfig struct {
	// Name identifies the watched service in logs and alerts. Default "service".
	Name string
	// Probe checks the target. Default HTTPProbe(Client, URL).
	Probe Probe
	// URL is probed by the default Probe. Required when Probe is nil.
	URL string
	// Client is the default Probe's HTTP client. Default http.DefaultClient.
	Client *http.Client
	// Count is how many probes one Run makes. Default DefaultCount (5).
	Count int
	// Interval is the pause between probes. Default DefaultInterval (10s).
	Interval time.Duration
	// LatencyThreshold: a slower probe fails. Default DefaultLatencyThreshold
	// (200ms).
	LatencyThreshold time.Duration
	// ProbeTimeout bounds one probe; hitting it is a failure. Default
	// DefaultProbeTimeout (5s).
	ProbeTimeout time.Duration
	// FailureLimit: roll back when failures >= FailureLimit. Default
	// DefaultFailureLimit (3).
	FailureLimit int
	// ErrorLimit: stop with VerdictError after this many consecutive
	// unmeasurable probes. Default DefaultErrorLimit (3).
	ErrorLimit int
	// Rollbacker is called once when the verdict is VerdictFailed. Optional.
	Rollbacker Rollbacker
	// Notifier receives VerdictFailed (critical) and VerdictError (warning) verdicts. Optional.
	Notifier alert.Notifier
	// Logger receives every probe result. Default slog.Default().
	Logger *slog.Logger
	// CrossOriginRedirects lets the default Probe follow redirects to
	// another scheme, host or port. Default false: such a redirect is not
	// followed and the probe fails (a deployment that sends its health
	// check elsewhere has not proved it is healthy); same-origin redirects
	// are followed.
	CrossOriginRedirects bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Watchdog probes a freshly deployed service and rolls it back when it
// fails its SLO.
type Watchdog struct {
	cfg   WatchdogConfig
	sleep backoff.SleepFunc // tests skip the waits (export_test.go)
}

// NewWatchdog validates cfg.
func NewWatchdog(cfg WatchdogConfig) (*Watchdog, error) {
	if cfg.Probe == nil {
		if cfg.URL == "" {
			return nil, errors.New("slo: WatchdogConfig needs a Probe or a URL")
		}
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("slo: WatchdogConfig.URL is not an http(s) URL")
		}
		cfg.Probe = httpProbe(cfg.Client, u, cfg.CrossOriginRedirects)
	}
	if cfg.Count < 0 || cfg.Interval < 0 || cfg.LatencyThreshold < 0 || cfg.ProbeTimeout < 0 || cfg.FailureLimit < 0 || cfg.ErrorLimit < 0 {
		return nil, errors.New("slo: negative WatchdogConfig field")
	}
	if cfg.Name == "" {
		cfg.Name = "service"
	}
	defaults.Set(&cfg.Count, DefaultCount)
	defaults.Set(&cfg.Interval, DefaultInterval)
	defaults.Set(&cfg.LatencyThreshold, DefaultLatencyThreshold)
	defaults.Set(&cfg.ProbeTimeout, DefaultProbeTimeout)
	defaults.Set(&cfg.FailureLimit, DefaultFailureLimit)
	defaults.Set(&cfg.ErrorLimit, DefaultErrorLimit)
	if cfg.FailureLimit > cfg.Count {
		return nil, fmt.Errorf("slo: FailureLimit %d exceeds Count %d: the watchdog could never fail", cfg.FailureLimit, cfg.Count)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Watchdog{cfg: cfg, sleep: backoff.Sleep}, nil
}

// Run probes Count times (stopping early once the verdict is certain),
// rolls back on VerdictFailed, alerts, and returns the report. The error is
// ctx.Err() when cancelled (verdict VerdictInconclusive, no rollback) or wraps
// ErrRollback when the rollback failed.
func (w *Watchdog) Run(ctx context.Context) (Report, error) {
	c := &w.cfg
	var rep Report
	consecutiveErrors := 0
	for i := range c.Count {
		if i > 0 {
			if err := w.sleep(ctx, c.Interval); err != nil {
				return w.finish(ctx, rep, VerdictInconclusive, err)
			}
		}
		pr := w.probe(ctx, i+1)
		if ctx.Err() != nil {
			return w.finish(ctx, rep, VerdictInconclusive, ctx.Err())
		}
		rep.Probes = append(rep.Probes, pr)
		switch pr.Outcome {
		case OutcomePass:
			rep.Passes++
			consecutiveErrors = 0
		case OutcomeFail:
			rep.Failures++
			consecutiveErrors = 0
		case OutcomeError:
			rep.Errors++
			consecutiveErrors++
		}
		c.Logger.InfoContext(ctx, "slo: probe", "service", c.Name, "n", pr.N, "outcome", pr.Outcome.String(),
			"latency", pr.Latency, "status", pr.Status, "err", pr.Err)
		if rep.Failures >= c.FailureLimit {
			return w.finish(ctx, rep, VerdictFailed, nil)
		}
		if consecutiveErrors >= c.ErrorLimit {
			return w.finish(ctx, rep, VerdictError, nil)
		}
	}
	if 2*(rep.Passes+rep.Failures) < c.Count {
		return w.finish(ctx, rep, VerdictInconclusive, nil)
	}
	return w.finish(ctx, rep, VerdictSuccess, nil)
}

func (w *Watchdog) probe(ctx context.Context, n int) ProbeResult {
	c := &w.cfg
	pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
	defer cancel()
	start := c.Now()
	status, err := c.Probe(pctx)
	pr := ProbeResult{N: n, At: start, Latency: c.Now().Sub(start), Status: status}
	switch {
	case errors.Is(err, ErrUnmeasurable):
		pr.Outcome, pr.Err = OutcomeError, err.Error()
	case err != nil:
		pr.Outcome, pr.Err = OutcomeFail, err.Error()
	case status != 0 && (status < 200 || status > 299):
		pr.Outcome, pr.Err = OutcomeFail, "status "+strconv.Itoa(status)
	case pr.Latency > c.LatencyThreshold:
		pr.Outcome, pr.Err = OutcomeFail, fmt.Sprintf("latency %v over %v", pr.Latency, c.LatencyThreshold)
	}
	return pr
}

func (w *Watchdog) finish(ctx context.Context, rep Report, v Verdict, err error) (Report, error) {
	c := &w.cfg
	rep.Verdict = v
	c.Logger.InfoContext(ctx, "slo: watchdog verdict", "service", c.Name, "verdict", v.String(),
		"passes", rep.Passes, "failures", rep.Failures, "errors", rep.Errors)
	if err != nil {
		return rep, err
	}
	fields := []alert.Field{
		{Key: "Failures", Value: strconv.Itoa(rep.Failures) + " (limit " + strconv.Itoa(c.FailureLimit) + ")"},
		{Key: "Errors", Value: strconv.Itoa(rep.Errors)},
		{Key: "Latency threshold", Value: c.LatencyThreshold.String()},
	}
	switch v {
	case VerdictFailed:
		reason := fmt.Sprintf("%s failed %d of %d probes (limit %d)", c.Name, rep.Failures, len(rep.Probes), c.FailureLimit)
		if c.Rollbacker != nil {
			if rerr := c.Rollbacker.Rollback(ctx, reason); rerr != nil {
				err = fmt.Errorf("%w: %w", ErrRollback, rerr)
				fields = append(fields, alert.Field{Key: "Rollback", Value: "FAILED: " + rerr.Error()})
			} else {
				rep.RolledBack = true
				fields = append(fields, alert.Field{Key: "Rollback", Value: "done"})
			}
		}
		w.notify(ctx, alert.Alert{Severity: alert.SeverityCritical, Title: c.Name + " failed its SLO watchdog", Message: reason, Fields: fields, Key: "watchdog|" + c.Name})
	case VerdictError:
		w.notify(ctx, alert.Alert{Severity: alert.SeverityWarning, Title: c.Name + " watchdog could not measure", Message: rep.Probes[len(rep.Probes)-1].Err, Fields: fields, Key: "watchdog-error|" + c.Name})
	}
	return rep, err
}

func (w *Watchdog) notify(ctx context.Context, a alert.Alert) {
	if w.cfg.Notifier == nil {
		return
	}
	a.Time = w.cfg.Now()
	if err := w.cfg.Notifier.Notify(ctx, a); err != nil {
		w.cfg.Logger.ErrorContext(ctx, "slo: alert failed", "err", err)
	}
}
