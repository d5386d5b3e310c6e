package slo

import (
	"crypto/rand"
	"encoding/hex"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Rollbacker undoes a bad deployment.
type Rollbacker interface {
	Rollback(ctx context.Context, reason string) error
}

// RollbackFunc adapts a function to Rollbacker.
type RollbackFunc func(ctx context.Context, reason string) error

// Rollback calls f.
func (f RollbackFunc) Rollback(ctx context.Context, reason string) error { return f(ctx, reason) }

// DefaultRollbackTimeout bounds a rollback command or webhook.
const DefaultRollbackTimeout = 5 * time.Minute

// maxOutput is how much command output is kept for an error message.
const maxOutput = 4 << 10

// CommandConfig configures a Command.
type CommandConfig struct {
	// Argv is the program and its arguments, e.g. ["./deploy.sh",
	// "rollback"]. Required.
	Argv []string
	// Dir is the working directory. Default: the current one.
	Dir string
	// Env is added to the current environment.
	Env []string
	// Timeout kills the command. Default DefaultRollbackTimeout (5m).
	Timeout time.Duration
}

// Command runs a program to roll back. The reason is passed in the
// LEVQOR_ROLLBACK_REASON environment variable, never on the command line
// or through a shell.
type Command struct{ cfg CommandConfig }

var (
	_ Rollbacker = (*Command)(nil)
	_ Rollbacker = RollbackFunc(nil)
)

// NewCommand validates cfg.
func NewCommand(cfg CommandConfig) (*Command, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("slo: CommandConfig.Argv names no program")
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultRollbackTimeout
	case cfg.Timeout < 0:
		return nil, errors.New("slo: CommandConfig.Timeout is negative")
	}
	return &Command{cfg: cfg}, nil
}

// Rollback runs the command and fails if it exits non-zero or times out;
// the error carries the exit status and the tail of its output.
func (c *Command) Rollback(ctx context.Context, reason string) error {
	argv, timeout := c.cfg.Argv, c.cfg.Timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(append(os.Environ(), c.cfg.Env...), "LEVQOR_ROLLBACK_REASON="+reason)
	// Let Wait return even if a grandchild keeps the output pipe open.
	cmd.WaitDelay = time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("rollback command %s timed out after %v; output: %s", argv[0], timeout, out.String())
	}
	if err != nil {
		return fmt.Errorf("rollback command %s: %w; output: %s", argv[0], err, out.String())
	}
	return nil
}

// tail keeps the last maxOutput bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxOutput:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL receives the POST (http or https). Required. It may carry a
	// token: it never appears in an error.
	URL string
	// Service names the service in the body.
	Service string
	// Header is added to the request (e.g. Authorization).
	Header http.Header
	// Client sends it. Default: a client with DefaultRollbackTimeout. Its
	// redirect policy is replaced: a rollback hook is never redirected.
	Client *http.Client
	// Now stamps the request. Default time.Now.
	Now func() time.Time
}

// Webhook POSTs {"service","reason","time"} as JSON to a URL (a deploy
// system's rollback hook) and fails unless it answers 2xx itself: a
// redirect is a failure, never followed (following a 301/302/303 would
// turn the POST into a GET without body, and a 200 to that is no
// rollback). Each call sends a fresh Idempotency-Key header, the same on
// any retry of that call by a proxy, so the hook can ignore duplicates.
type Webhook struct {
	cfg    WebhookConfig
	origin string // scheme://host, for errors
}

var _ Rollbacker = (*Webhook)(nil)

// NewWebhook validates cfg.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error would quote the URL, token and all.
		return nil, errors.New("slo: WebhookConfig.URL is not an http(s) URL")
	}
	c := &http.Client{Timeout: DefaultRollbackTimeout}
	if cfg.Client != nil {
		cc := *cfg.Client
		c = &cc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.Client = c
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{cfg: cfg, origin: u.Scheme + "://" + u.Host}, nil
}

// Rollback implements Rollbacker.
func (h *Webhook) Rollback(ctx context.Context, reason string) error {
	body, _ := json.Marshal(map[string]string{"service": h.cfg.Service, "reason": reason, "time": h.cfg.Now().UTC().Format(time.RFC3339)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("rollback webhook %s: cannot build the request", h.origin)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idempotencyKey())
	for k, vs := range h.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := h.cfg.Client.Do(req)
	if err != nil {
		// *url.Error prints the URL, which may carry a token: keep only its origin.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = h.origin + "/…"
		}
		return fmt.Errorf("rollback webhook: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	switch {
	case res.StatusCode >= 300 && res.StatusCode <= 399:
		return fmt.Errorf("rollback webhook %s: HTTP %d redirect (not followed): the rollback was not confirmed", h.origin, res.StatusCode)
	case res.StatusCode < 200 || res.StatusCode > 299:
		return fmt.Errorf("rollback webhook %s: HTTP %d: %s", h.origin, res.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

func idempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "levqor-rollback-" + hex.EncodeToString(b[:])
}
