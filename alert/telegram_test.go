package alert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/levqor/levqor/alert"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type sleeps struct{ waits []time.Duration }

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func newTelegram(t *testing.T, f *fakeTelegram, s *sleeps) *alert.Telegram {
	t.Helper()
	tg, err := alert.NewTelegram(alert.TelegramConfig{Token: testToken, ChatID: "-100123", BaseURL: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	alert.SetSleep(tg, s.Sleep)
	return tg
}

func TestEscapeMarkdownV2(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"v1.2.3", `v1\.2\.3`},
		{`_*[]()~` + "`" + `>#+-=|{}.!\`, `\_\*\[\]\(\)\~\` + "`" + `\>\#\+\-\=\|\{\}\.\!\\`},
		{"error: 50% (timeout!)", `error: 50% \(timeout\!\)`},
		{"héllo 🚨", "héllo 🚨"},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := alert.EscapeMarkdownV2(tc.in); got != tc.want {
			t.Errorf("EscapeMarkdownV2(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzEscapeMarkdownV2: any input escapes to text Telegram's MarkdownV2
// parser accepts and that renders as the input.
func FuzzEscapeMarkdownV2(f *testing.F) {
	for _, s := range []string{"", "a.b", `\`, "*bold*", "_x_", "[link](http://x)", "🚨 100%!", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseMarkdownV2(alert.EscapeMarkdownV2(s))
		if err != nil {
			t.Fatalf("escaped %q rejected: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Fatalf("renders as %q, want %q", got, want)
		}
	})
}

func TestTelegramDelivers(t *testing.T) {
	f := newFakeTelegram(t)
	tg := newTelegram(t, f, &sleeps{})
	ctx := context.Background()
	for _, sev := range []alert.Severity{alert.SeverityInfo, alert.SeveritySuccess, alert.SeverityWarning, alert.SeverityCritical} {
		err := tg.Notify(ctx, alert.Alert{Severity: sev, Title: "Disk 91.5% full (db-1)", Message: "free: 2.1 GB [/var]", Fields: []alert.Field{{"host", "db-1.internal"}}, Time: at})
		if err != nil {
			t.Fatalf("%v: %v", sev, err)
		}
	}
	if err := tg.Notify(ctx, alert.Alert{Severity: alert.SeverityCritical, Title: "quiet", Silent: true, Time: at}); err != nil {
		t.Fatal(err)
	}
	msgs := f.sent()
	if len(msgs) != 5 {
		t.Fatalf("sent %d messages, want 5", len(msgs))
	}
	for i, want := range []bool{true, true, false, false, true} {
		if msgs[i].DisableNotification != want {
			t.Errorf("message %d: disable_notification = %v, want %v", i, msgs[i].DisableNotification, want)
		}
		if msgs[i].ChatID != "-100123" {
			t.Errorf("chat_id = %q", msgs[i].ChatID)
		}
	}
	plain, _ := parseMarkdownV2(msgs[3].Text)
	for _, want := range []string{"🚨 Disk 91.5% full (db-1) [CRITICAL]", "free: 2.1 GB [/var]", "host: db-1.internal", "2026-11-25T12:00:00Z"} {
		if !strings.Contains(plain, want) {
			t.Errorf("message lacks %q:\n%s", want, plain)
		}
	}
}

func TestTelegramSplitsLongAlerts(t *testing.T) {
	f := newFakeTelegram(t)
	tg, err := alert.NewTelegram(alert.TelegramConfig{Token: testToken, ChatID: "-100123", BaseURL: f.URL, MaxText: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i := range 400 {
		body.WriteString("line ")
		body.WriteString(strings.Repeat("é.🚀", i%7))
		body.WriteString(" (ok)!\n")
	}
	body.WriteString(strings.Repeat("x.", 5000)) // one line longer than a message
	msg := body.String()
	if err := tg.Notify(context.Background(), alert.Alert{Severity: alert.SeverityWarning, Title: "big", Message: msg, Time: at}); err != nil {
		t.Fatal(err)
	}
	msgs := f.sent()
	if len(msgs) < 3 {
		t.Fatalf("sent %d messages, want the alert split into several", len(msgs))
	}
	var all strings.Builder
	for i, m := range msgs {
		plain, err := parseMarkdownV2(m.Text)
		if err != nil {
			t.Fatalf("chunk %d invalid: %v", i, err)
		}
		if n := len(utf16.Encode([]rune(m.Text))); n > alert.MaxMessageLength {
			t.Fatalf("chunk %d is %d UTF-16 units", i, n)
		}
		if !utf8.ValidString(m.Text) {
			t.Fatalf("chunk %d cut inside a rune", i)
		}
		all.WriteString(plain)
	}
	squash := func(s string) string { return strings.ReplaceAll(s, "\n", "") }
	if !strings.Contains(squash(all.String()), squash(msg)) {
		t.Fatal("split messages lost or reordered text")
	}
}

func TestTelegramRetries(t *testing.T) {
	ctx := context.Background()
	a := alert.Alert{Title: "t", Time: at}

	t.Run("429 retry_after honoured", func(t *testing.T) {
		f := newFakeTelegram(t, tooMany(3), tooMany(1))
		s := &sleeps{}
		if err := newTelegram(t, f, s).Notify(ctx, a); err != nil {
			t.Fatal(err)
		}
		if len(f.sent()) != 1 || len(s.waits) != 2 || s.waits[0] != 3*time.Second || s.waits[1] != time.Second {
			t.Fatalf("sent %d, waits %v; want 1 message after waiting 3s and 1s", len(f.sent()), s.waits)
		}
	})
	t.Run("429 retry_after too long fails at once", func(t *testing.T) {
		f := newFakeTelegram(t, tooMany(3600))
		s := &sleeps{}
		err := newTelegram(t, f, s).Notify(ctx, a)
		var apiErr *alert.APIError
		if !errors.Is(err, alert.ErrDelivery) || !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour || len(s.waits) != 0 {
			t.Fatalf("err %v, waits %v", err, s.waits)
		}
	})
	t.Run("5xx retried with backoff then reported", func(t *testing.T) {
		f := newFakeTelegram(t, apiError(502, "Bad Gateway"), apiError(500, "Internal Server Error"), apiError(500, "Internal Server Error"), apiError(500, "Internal Server Error"))
		s := &sleeps{}
		err := newTelegram(t, f, s).Notify(ctx, a)
		var apiErr *alert.APIError
		if !errors.Is(err, alert.ErrDelivery) || !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
			t.Fatalf("err = %v", err)
		}
		if f.requests != 4 || len(s.waits) != 3 || s.waits[0] != time.Second || s.waits[2] != 4*time.Second {
			t.Fatalf("requests %d, waits %v; want 4 requests, waits 1s 2s 4s", f.requests, s.waits)
		}
	})
	t.Run("5xx then success", func(t *testing.T) {
		f := newFakeTelegram(t, apiError(503, "Service Unavailable"))
		if err := newTelegram(t, f, &sleeps{}).Notify(ctx, a); err != nil || len(f.sent()) != 1 {
			t.Fatalf("err %v, sent %d", err, len(f.sent()))
		}
	})
	t.Run("400 not retried", func(t *testing.T) {
		f := newFakeTelegram(t, apiError(400, "Bad Request: chat not found"))
		s := &sleeps{}
		err := newTelegram(t, f, s).Notify(ctx, a)
		if err == nil || !strings.Contains(err.Error(), "chat not found") || f.requests != 1 || len(s.waits) != 0 {
			t.Fatalf("err %v, requests %d", err, f.requests)
		}
	})
	t.Run("context deadline stops retrying", func(t *testing.T) {
		f := newFakeTelegram(t, apiError(500, "x"), apiError(500, "x"))
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		tg, _ := alert.NewTelegram(alert.TelegramConfig{Token: testToken, ChatID: "1", BaseURL: f.URL, Backoff: time.Hour})
		start := time.Now()
		if err := tg.Notify(ctx, a); err == nil {
			t.Fatal("no error")
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("waited past the context deadline")
		}
	})
}

// TestTokenRedaction walks every error path and checks that the token
// appears in no error text (nor any error it wraps) and no log line.
// TestTelegramCheck: Check tells a working configuration from a wrong
// token and from a chat the bot cannot reach, sends no message, and
// keeps the token out of its errors.
func TestTelegramCheck(t *testing.T) {
	f := newFakeTelegram(t)
	f.chats = []string{"-100123"}
	for _, tc := range []struct {
		name, token, chat string
		status            int
		say               string
	}{
		{"working", testToken, "-100123", 0, ""},
		{"wrong token", "987654321:AAWrongTokenWrongTokenWrongToken_x", "-100123", 401, "Unauthorized"},
		{"unknown chat", testToken, "-100999", 400, "chat not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := alert.NewTelegram(alert.TelegramConfig{Token: tc.token, ChatID: tc.chat, BaseURL: f.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = tg.Check(context.Background())
			var apiErr *alert.APIError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("a working configuration: %v", err)
			case tc.status != 0 && (!errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || !strings.Contains(err.Error(), tc.say)):
				t.Fatalf("got %v, want %d %q", err, tc.status, tc.say)
			case err != nil && strings.Contains(err.Error(), tc.token):
				t.Fatalf("the token in the error: %v", err)
			}
		})
	}
	if sent := f.sent(); len(sent) != 0 {
		t.Fatalf("Check sent messages: %v", sent)
	}
}

func TestTokenRedaction(t *testing.T) {
	ctx := context.Background()
	a := alert.Alert{Title: "t", Time: at}
	closed := newFakeTelegram(t)
	closed.Close()
	// Two deliveries each (direct, then through a Queue): script twice.
	echoReply := apiError(400, "Bad Request: bot"+testToken+" is not a member")
	echo := newFakeTelegram(t, echoReply, echoReply)
	html := fakeReply{502, "<html>bad gateway</html>"}
	garbage := newFakeTelegram(t, html, html, html, html, html, html, html, html)
	slow := newFakeTelegram(t)
	slow.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) })

	cases := map[string]alert.TelegramConfig{
		"connection refused": {BaseURL: closed.URL},
		"description echoes": {BaseURL: echo.URL},
		"non-JSON 5xx":       {BaseURL: garbage.URL},
		"client timeout":     {BaseURL: slow.URL, Client: &http.Client{Timeout: 50 * time.Millisecond}},
		"wrong host":         {BaseURL: "http://127.0.0.1:1"},
		"unauthorized":       {BaseURL: newFakeTelegram(t, apiError(401, "Unauthorized"), apiError(401, "Unauthorized")).URL},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			cfg.Token, cfg.ChatID = testToken, "1"
			tg, err := alert.NewTelegram(cfg)
			if err != nil {
				t.Fatal(err)
			}
			alert.SetSleep(tg, (&sleeps{}).Sleep)
			var logs bytes.Buffer
			q, _ := alert.NewQueue(alert.QueueConfig{Next: tg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			err = tg.Notify(ctx, a)
			if err == nil {
				t.Fatal("expected an error")
			}
			for e := range walk(err) {
				if strings.Contains(e.Error(), testToken) || strings.Contains(e.Error(), "AAFakeSecret") {
					t.Fatalf("token in error: %v", e)
				}
			}
			_ = q.Notify(ctx, a)
			_ = q.Shutdown(ctx)
			if q.Failed() != 1 {
				t.Fatalf("queue failed count %d", q.Failed())
			}
			if strings.Contains(logs.String(), "AAFakeSecret") {
				t.Fatalf("token in log: %s", logs.String())
			}
		})
	}
}

// walk yields err and every error it wraps.
func walk(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		stack := []error{err}
		for len(stack) > 0 {
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if e == nil {
				continue
			}
			if !yield(e) {
				return
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				stack = append(stack, u.Unwrap())
			case interface{ Unwrap() []error }:
				stack = append(stack, u.Unwrap()...)
			}
		}
	}
}

func TestTelegramConfig(t *testing.T) {
	for name, cfg := range map[string]alert.TelegramConfig{
		"no token":      {ChatID: "1"},
		"no chat":       {Token: testToken},
		"token w/ path": {Token: "a/b", ChatID: "1"},
	} {
		if _, err := alert.NewTelegram(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: token in error", name)
		}
	}
}

// TestTelegramEdges: a 1 MiB alert is a few messages with a truncation
// marker; a line of 4096 spaces never yields a white-space-only message;
// a 200 whose body is not JSON counts as delivered (sent once); a
// percent-encoded echo of the token is scrubbed.
func TestTelegramEdges(t *testing.T) {
	ctx := context.Background()
	f := newFakeTelegram(t)
	tg := newTelegram(t, f, &sleeps{})
	if err := tg.Notify(ctx, alert.Alert{Title: "huge", Message: strings.Repeat("a", 1<<20), Time: at}); err != nil {
		t.Fatal(err)
	}
	msgs := f.sent()
	if len(msgs) > 4 || !strings.Contains(msgs[len(msgs)-1].Text, "more characters") {
		t.Fatalf("a 1 MiB alert became %d messages", len(msgs))
	}

	f2 := newFakeTelegram(t)
	tg2 := newTelegram(t, f2, &sleeps{})
	if err := tg2.Notify(ctx, alert.Alert{Title: "spaces", Message: "start\n" + strings.Repeat(" ", 4096) + "\nend", Time: at}); err != nil {
		t.Fatal(err)
	}
	for i, m := range f2.sent() {
		if strings.TrimSpace(m.Text) == "" {
			t.Fatalf("message %d is only white space", i)
		}
	}

	var posts atomic.Int64
	mangled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "<html>ok</html>")
	}))
	defer mangled.Close()
	s := &sleeps{}
	tg3, _ := alert.NewTelegram(alert.TelegramConfig{Token: testToken, ChatID: "1", BaseURL: mangled.URL})
	alert.SetSleep(tg3, s.Sleep)
	if err := tg3.Notify(ctx, alert.Alert{Title: "once", Time: at}); err != nil || posts.Load() != 1 || len(s.waits) != 0 {
		t.Fatalf("200 with a non-JSON body: err %v, %d posts", err, posts.Load())
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"ok":false,"error_code":400,"description":"Bad Request: bot %s not found"}`, url.QueryEscape(testToken))
	}))
	defer echo.Close()
	tg4, _ := alert.NewTelegram(alert.TelegramConfig{Token: testToken, ChatID: "1", BaseURL: echo.URL})
	err := tg4.Notify(ctx, alert.Alert{Title: "x", Time: at})
	if err == nil || strings.Contains(err.Error(), url.QueryEscape(testToken)) || strings.Contains(err.Error(), "AAFakeSecret") {
		t.Fatalf("percent-encoded token in the error: %v", err)
	}
}
