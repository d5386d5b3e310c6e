package spendguard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/spendguard"
)

const childEnv = "LEVQOR_FLAGS_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		// Pause and resume forever until killed.
		f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
		for i := 0; ; i++ {
			if i%2 == 0 {
				_ = f.Pause(context.Background(), strings.Repeat("limit reached ", 200))
			} else {
				_ = f.Resume(context.Background(), "ops")
			}
		}
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func TestFlagsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "billing_flags.json")
	if err := os.WriteFile(path, []byte(`{"maintenance": false, "plan_limits": {"free": 3}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path, Now: func() time.Time { return now }})
	if st, err := f.State(t.Context()); err != nil || st.Paused {
		t.Fatalf("%+v %v", st, err)
	}
	if err := f.Pause(context.Background(), "daily spend $50.10 reached the limit $50.00"); err != nil {
		t.Fatal(err)
	}
	st, err := f.State(t.Context())
	if err != nil || !st.Paused || !st.Since.Equal(now) || !strings.Contains(st.Reason, "$50.10") {
		t.Fatalf("%+v %v", st, err)
	}
	var raw map[string]any
	b, _ := os.ReadFile(path)
	_ = json.Unmarshal(b, &raw)
	if raw["maintenance"] != false || raw["plan_limits"] == nil || raw["billing_paused"] != true {
		t.Fatalf("other keys lost or state missing: %s", b)
	}
	if err := f.Resume(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.State(t.Context()); st.Paused || st.Operator != "alice" {
		t.Fatalf("%+v", st)
	}
	// Another process edits the file: State notices.
	_ = os.WriteFile(path, []byte(`{"billing_paused": true, "pause_reason": "manual"}`), 0o600)
	future := time.Now().Add(time.Second)
	_ = os.Chtimes(path, future, future)
	if st, _ := f.State(t.Context()); !st.Paused || st.Reason != "manual" {
		t.Fatalf("external change missed: %+v", st)
	}
}

// TestFlagsFileCrashMidWrite kills a process that rewrites the flags file
// in a loop, at arbitrary moments: the file must always be a whole old or
// new version.
func TestFlagsFileCrashMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "billing_flags.json")
	f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
	if err := f.Pause(context.Background(), "initial"); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+i*7) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st spendguard.PauseState
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("kill %d left a torn file: %v\n%.200s", i, err, b)
		}
	}
}

func TestBlockWhilePaused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: path})
	srv := httptest.NewServer(spendguard.BlockWhilePaused(f)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "charged")
	})))
	defer srv.Close()
	get := func() (int, string) {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "charged" {
		t.Fatalf("%d %s", code, body)
	}
	_ = f.Pause(context.Background(), "limit")
	code, body := get()
	if code != 503 || !strings.Contains(body, `"error":"billing is paused"`) || !strings.Contains(body, `"reason":"limit"`) {
		t.Fatalf("%d %s", code, body)
	}
	_ = f.Resume(context.Background(), "ops")
	if code, _ := get(); code != 200 {
		t.Fatal("not resumed")
	}
	_ = os.WriteFile(path, []byte("{torn"), 0o600)
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(path, future, future)
	if code, body := get(); code != 503 {
		t.Fatalf("unreadable flags must fail closed: %d %s", code, body)
	}
}
