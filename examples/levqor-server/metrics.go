package main

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/levqor/levqor/ratelimit"
)

type metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	rateLimit  *prometheus.CounterVec
	anomalies  prometheus.Counter
	cspReports *prometheus.CounterVec
	hashBusy   prometheus.Counter
	panics     prometheus.Counter
	// webhookEvents counts Stripe events by outcome (a closed set).
	webhookEvents *prometheus.CounterVec
	handler       http.Handler
	// series holds each (route, method, code)'s two series once looked up:
	// WithLabelValues hashes and finds its labels again on every call. Its
	// keys come from the same closed sets as the labels, so it is bounded
	// as the metric is.
	series sync.Map // seriesKey → *requestSeries
}

type seriesKey struct {
	route, method string
	code          int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(a *app) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levqor_http_requests_total", Help: "HTTP requests by route, method and status."},
			[]string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "levqor_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"route"}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levqor_ratelimit_decisions_total", Help: "Rate-limit decisions."},
			[]string{"decision"}),
		anomalies: prometheus.NewCounter(prometheus.CounterOpts{Name: "levqor_latency_anomalies_total", Help: "Requests flagged by the latency anomaly detector."}),
		cspReports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levqor_csp_reports_total", Help: "CSP violation reports by outcome: logged, repeated (seen within the log interval, counted only), limited (429)."},
			[]string{"outcome"}),
		hashBusy: prometheus.NewCounter(prometheus.CounterOpts{Name: "levqor_password_hash_busy_total", Help: "Logins and registrations refused with 503 because every hashing slot stayed taken."}),
		panics:   prometheus.NewCounter(prometheus.CounterOpts{Name: "levqor_http_panics_total", Help: "Handler panics recovered."}),
		webhookEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "levqor_stripe_webhook_events_total", Help: "Stripe webhook events by outcome: handled, duplicate, ignored (type not handled), rejected (signature), failed (not recorded; Stripe retries)."},
			[]string{"outcome"}),
	}
	reg := a.reg
	reg.MustRegister(m.requests, m.latency, m.rateLimit, m.anomalies, m.cspReports, m.hashBusy, m.panics, m.webhookEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "levqor_ratelimit_fallback_open", Help: "1 while rate limiting has fallen back from Redis to per-replica memory."},
		func() float64 {
			if f, ok := a.limiter.(*ratelimit.Fallback); ok && f.Open() {
				return 1
			}
			return 0
		}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "levqor_alerts_delivered_total", Help: "Alerts delivered."}, func() float64 { return float64(a.alerts.Queue().Delivered()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "levqor_alerts_failed_total", Help: "Alerts whose delivery failed."}, func() float64 { return float64(a.alerts.Queue().Failed()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "levqor_redis_data_lost_total", Help: "Times Redis was found to have lost the token store's data."}, func() float64 { return float64(a.redisLost.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "levqor_alerts_dropped_total", Help: "Alerts dropped by a full queue."}, func() float64 { return float64(a.alerts.Queue().Dropped()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "levqor_slo_error_budget_remaining", Help: "Unspent fraction of the API SLO's error budget."},
		func() float64 { return a.tracker.Status().BudgetRemaining }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "levqor_ratelimit_memory_keys", Help: "Keys held by the in-memory API rate limiter (capped by LEVQOR_RATE_LIMIT_KEYS)."},
		func() float64 { return float64(a.memLim.Len()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "levqor_slo_events", Help: "Requests counted by the API SLO over its period (API routes only)."},
		func() float64 { return float64(a.tracker.Status().Events) }))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// observe records a request. Every label comes from a closed set: route
// is a mux pattern or "unmatched", method one of the standard methods or
// "other", code a status the server wrote.
func (m *metrics) observe(route, method string, code int, d time.Duration) {
	k := seriesKey{route, methodLabel(method), code}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &requestSeries{
			count:    m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(code)),
			duration: m.latency.WithLabelValues(route),
		})
	}
	s := v.(*requestSeries)
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

// methodLabel maps a request method to a closed set of label values: a
// client can send any token as a method, and each distinct label value
// would be a new time series kept forever.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
