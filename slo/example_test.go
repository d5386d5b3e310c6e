package slo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/levqor/levqor/slo"
)

func ExampleWatchdog() {
	// A deployment that answers 503: three failed probes roll it back.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	w, _ := slo.NewWatchdog(slo.WatchdogConfig{
		Name:     "api",
		URL:      srv.URL,
		Interval: time.Millisecond,
		Rollbacker: slo.RollbackFunc(func(_ context.Context, reason string) error {
			fmt.Println("rollback:", reason)
			return nil
		}),
	})
	rep, _ := w.Run(context.Background())
	fmt.Println("verdict:", rep.Verdict, "failures:", rep.Failures)
	// Output:
	// rollback: api failed 3 of 3 probes (limit 3)
	// verdict: failed failures: 3
}

func ExampleTracker() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tr, _ := slo.NewTracker(slo.TrackerConfig{Objective: 0.99, EvalInterval: -1, Now: func() time.Time { return now }})
	defer tr.Close()
	for i := range 1000 {
		tr.Record(i%200 != 0) // 0.5% errors
	}
	st := tr.Status()
	fmt.Printf("SLI %.3f, budget remaining %.0f%%\n", st.SLI, 100*st.BudgetRemaining)
	// Output: SLI 0.995, budget remaining 50%
}
