package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/testclock"
)

// TestThrottledLog: the first event is logged at once, later ones at most
// once per interval with the count left unlogged since the line before; a
// clock stepped back does not silence the log.
func TestThrottledLog(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	tl := newThrottledLog(log, time.Minute, clock.Now)
	event := func(i int) { tl.Log(context.Background(), slog.LevelWarn, "forged", "i", i) }
	steps := []struct {
		advance time.Duration
		events  int
		want    []string // the lines these events log
	}{
		{0, 1, []string{`level=WARN msg=forged i=0`}},
		{59 * time.Second, 3, nil},
		{time.Second, 2, []string{`level=WARN msg=forged i=0 unlogged=3`}},
		{30 * time.Second, 1, nil},
		{-time.Hour, 1, []string{`level=WARN msg=forged i=0 unlogged=2`}},
		{time.Minute, 1, []string{`level=WARN msg=forged i=0`}},
	}
	for n, st := range steps {
		buf.Reset()
		clock.Advance(st.advance)
		for i := range st.events {
			event(i)
		}
		got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if buf.Len() == 0 {
			got = nil
		}
		if strings.Join(got, "|") != strings.Join(st.want, "|") {
			t.Errorf("step %d (%v later, %d events): logged %q, want %q", n, st.advance, st.events, got, st.want)
		}
	}
}
