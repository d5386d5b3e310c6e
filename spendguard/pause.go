package spendguard

import (
	"github.com/levqor/levqor/internal/httpx"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/levqor/levqor/internal/atomicfile"
)

// Pauser stops billable work when the daily limit is reached. Resume is
// an operator's decision: the Guard never calls it.
type Pauser interface {
	Pause(ctx context.Context, reason string) error
}

// PauseState says whether billing is paused.
type PauseState struct {
	Paused   bool      `json:"billing_paused"`
	Reason   string    `json:"pause_reason,omitempty"`
	Since    time.Time `json:"paused_at,omitzero"`
	Resumed  time.Time `json:"resumed_at,omitzero"`
	Operator string    `json:"resumed_by,omitempty"`
}

// PauseFunc adapts a function to Pauser.
type PauseFunc func(ctx context.Context, reason string) error

// Pause calls f.
func (f PauseFunc) Pause(ctx context.Context, reason string) error { return f(ctx, reason) }

// FlagsFileConfig configures a FlagsFile.
type FlagsFileConfig struct {
	// Path of the JSON billing-flags file. Required; a missing file means
	// not paused.
	Path string
	// Now stamps pauses and resumes. Default time.Now.
	Now func() time.Time
}

// FlagsFile keeps the pause state in a JSON billing-flags file that other
// processes (workers, cron jobs) can read. Keys it does not own are kept.
// Every write is atomic: a temporary file, fsync, rename, directory fsync,
// so a crash leaves either the old file or the new one, never half. Content
// that is not a JSON object of the expected shape (null, an array, a
// string where a boolean belongs) is an error, never a panic; State and
// Pause then fail, and BlockWhilePaused fails closed.
type FlagsFile struct {
	path string
	now  func() time.Time

	mu     sync.Mutex
	cached PauseState
	stamp  fileStamp
}

// fileStamp identifies one version of the file: a replacement by rename
// changes the inode even when size and modification time are equal.
type fileStamp struct {
	dev, ino uint64
	mod      time.Time
	ctime    int64
	size     int64
	ok       bool
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino, st.ctime = uint64(sys.Dev), sys.Ino, sys.Ctim.Nano()
	}
	return st
}

var (
	_ Pauser       = (*FlagsFile)(nil)
	_ PauseChecker = (*FlagsFile)(nil)
	_ Pauser       = PauseFunc(nil)
)

// NewFlagsFile validates cfg. It does not read the file.
func NewFlagsFile(cfg FlagsFileConfig) (*FlagsFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("spendguard: FlagsFileConfig.Path is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &FlagsFile{path: cfg.Path, now: cfg.Now}, nil
}

// Path is the flags file's path.
func (f *FlagsFile) Path() string { return f.path }

// Pause implements Pauser.
func (f *FlagsFile) Pause(_ context.Context, reason string) error {
	return f.update(func(st *PauseState) {
		if !st.Paused {
			st.Since = f.now().UTC()
		}
		st.Paused, st.Reason = true, reason
	})
}

// Resume lifts the pause; operator is recorded.
func (f *FlagsFile) Resume(_ context.Context, operator string) error {
	return f.update(func(st *PauseState) {
		st.Paused, st.Reason, st.Resumed, st.Operator = false, "", f.now().UTC(), operator
	})
}

// State reads the file, re-parsing it only when it changed (inode, size,
// modification or change time), so it is cheap enough for every request. A missing file
// means not paused; an unreadable one is an error. ctx is not used: a
// local file does not wait on anything a context could cancel.
func (f *FlagsFile) State(_ context.Context) (PauseState, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return PauseState{}, nil
	}
	if err != nil {
		return PauseState{}, err
	}
	stamp := stampOf(fi)
	f.mu.Lock()
	defer f.mu.Unlock()
	if stamp == f.stamp {
		return f.cached, nil
	}
	_, st, err := f.read()
	if err != nil {
		return PauseState{}, err
	}
	f.cached, f.stamp = st, stamp
	return st, nil
}

func (f *FlagsFile) read() (map[string]json.RawMessage, PauseState, error) {
	raw := map[string]json.RawMessage{}
	var st PauseState
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return raw, st, nil
	}
	if err != nil {
		return nil, st, err
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, st, fmt.Errorf("spendguard: flags file %s is not a JSON object", f.path)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, st, fmt.Errorf("spendguard: flags file %s: %w", f.path, err)
	}
	return raw, st, nil
}

func (f *FlagsFile) update(change func(*PauseState)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, st, err := f.read()
	if err != nil {
		return err
	}
	change(&st)
	own, _ := json.Marshal(st)
	var ownKeys map[string]json.RawMessage
	_ = json.Unmarshal(own, &ownKeys)
	for _, k := range []string{"billing_paused", "pause_reason", "paused_at", "resumed_at", "resumed_by"} {
		delete(raw, k)
	}
	for k, v := range ownKeys {
		raw[k] = v
	}
	b, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(f.path, append(b, '\n')); err != nil {
		return fmt.Errorf("spendguard: write flags file: %w", err)
	}
	f.stamp = fileStamp{} // force a re-read
	return nil
}

// PauseChecker reports the pause state; *FlagsFile and *SQLFlags
// implement it.
type PauseChecker interface {
	State(ctx context.Context) (PauseState, error)
}

// BlockWhilePaused returns middleware for billable routes: while billing
// is paused they answer 503 with Retry-After and a JSON explanation. If
// the state cannot be read the route is blocked too (fail closed: money
// is at stake).
func BlockWhilePaused(p PauseChecker) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, err := p.State(r.Context())
			if err == nil && !st.Paused {
				next.ServeHTTP(w, r)
				return
			}
			body := map[string]any{"error": "billing is paused"}
			if err != nil {
				body["reason"] = "billing state unavailable"
			} else {
				body["reason"] = st.Reason
				body["paused_at"] = st.Since
			}
			w.Header().Set("Retry-After", "3600")
			httpx.WriteJSON(w, http.StatusServiceUnavailable, body)
		})
	}
}
