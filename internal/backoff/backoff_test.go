package backoff_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/backoff"
)

func TestDo(t *testing.T) {
	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	p := backoff.Policy{Attempts: 4, Initial: time.Second, Max: 10 * time.Second}
	boom := errors.New("503")
	calls := 0
	err := backoff.Do(context.Background(), p, sleep, func(n int) error {
		calls++
		switch n {
		case 1:
			return backoff.Retryable(boom, 7*time.Second) // the server's wait
		case 2, 3:
			return backoff.Retryable(boom, 0) // exponential: 2s, then 4s
		}
		return nil
	})
	if err != nil || calls != 4 || len(waits) != 3 || waits[0] != 7*time.Second || waits[1] != 2*time.Second || waits[2] != 4*time.Second {
		t.Fatalf("err %v calls %d waits %v", err, calls, waits)
	}

	waits = nil
	err = backoff.Do(context.Background(), p, sleep, func(int) error { return backoff.Retryable(boom, 999999*time.Second) })
	if !errors.Is(err, backoff.ErrWaitTooLong) || !errors.Is(err, boom) || len(waits) != 0 {
		t.Fatalf("a 277-hour Retry-After: err %v, waits %v", err, waits)
	}

	permanent := errors.New("400")
	calls = 0
	if err := backoff.Do(context.Background(), p, sleep, func(int) error { calls++; return permanent }); err != permanent || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	calls = 0
	err = backoff.Do(context.Background(), p, sleep, func(int) error { calls++; return backoff.Retryable(boom, 0) })
	var r *backoff.Retry
	if err != boom || errors.As(err, &r) || calls != 4 {
		t.Fatalf("exhausted: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := backoff.Do(ctx, p, nil, func(int) error { return backoff.Retryable(boom, 0) }); !errors.Is(err, context.Canceled) || !errors.Is(err, boom) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v  string
		d  time.Duration
		ok bool
	}{
		{"", 0, false}, {"7", 7 * time.Second, true}, {"-1", 0, false}, {"soon", 0, false},
		{"999999999999999999", 365 * 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		d, ok := backoff.RetryAfter(http.Header{"Retry-After": {tc.v}}, now)
		if d != tc.d || ok != tc.ok {
			t.Errorf("Retry-After %q = %v %v, want %v %v", tc.v, d, ok, tc.d, tc.ok)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}
