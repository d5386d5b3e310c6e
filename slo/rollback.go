package slo

import (
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

// Command runs a program to roll back, e.g. ["./deploy.sh", "rollback"].
// The reason is passed in the LEVQOR_ROLLBACK_REASON environment variable,
// never on the command line or through a shell.
type Command struct {
	// Argv is the program and its arguments. Required.
	Argv []string
	// Dir is the working directory. Default: the current one.
	Dir string
	// Env is added to the current environment.
	Env []string
	// Timeout kills the command. Default DefaultRollbackTimeout (5m).
	Timeout time.Duration
}

var _ Rollbacker = (*Command)(nil)

// Rollback runs the command and fails if it exits non-zero or times out;
// the error carries the exit status and the tail of its output.
func (c *Command) Rollback(ctx context.Context, reason string) error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("slo: rollback Command has no program")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultRollbackTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(append(os.Environ(), c.Env...), "LEVQOR_ROLLBACK_REASON="+reason)
	// Let Wait return even if a grandchild keeps the output pipe open.
	cmd.WaitDelay = time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("rollback command %s timed out after %v; output: %s", c.Argv[0], timeout, out.String())
	}
	if err != nil {
		return fmt.Errorf("rollback command %s: %w; output: %s", c.Argv[0], err, out.String())
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

// Webhook POSTs {"service","reason","time"} as JSON to a URL (a deploy
// system's rollback hook) and fails unless it answers 2xx.
type Webhook struct {
	// URL receives the POST. Required.
	URL string
	// Service names the service in the body.
	Service string
	// Header is added to the request (e.g. Authorization).
	Header http.Header
	// Client sends it. Default: a client with DefaultRollbackTimeout.
	Client *http.Client
	// Now stamps the request. Default time.Now.
	Now func() time.Time
}

var _ Rollbacker = (*Webhook)(nil)

// Rollback implements Rollbacker.
func (h *Webhook) Rollback(ctx context.Context, reason string) error {
	if h.URL == "" {
		return errors.New("slo: rollback Webhook has no URL")
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	body, _ := json.Marshal(map[string]string{"service": h.Service, "reason": reason, "time": now().UTC().Format(time.RFC3339)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("rollback webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range h.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultRollbackTimeout}
	}
	res, err := client.Do(req)
	if err != nil {
		// *url.Error prints the URL, which may carry a token: keep only its origin.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = req.URL.Scheme + "://" + req.URL.Host + "/…"
		}
		return fmt.Errorf("rollback webhook: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("rollback webhook: HTTP %d: %s", res.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
