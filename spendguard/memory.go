package spendguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/levqor/levqor/internal/atomicfile"
)

// Memory keeps what a Guard has alerted and paused across processes. A
// Guard made anew by every run of a cron job would otherwise alert on each
// run for a threshold crossed hours before; with a Memory it alerts once
// per crossing, as one long-lived Guard does. Optional
// (GuardConfig.Memory): nil keeps the record in the Guard only.
type Memory interface {
	// Load returns the last record saved; the zero Memo if there is none.
	Load(ctx context.Context) (Memo, error)
	// Save replaces the record.
	Save(ctx context.Context, m Memo) error
}

// Memo is a Guard's record: the day it describes (YYYY-MM-DD in the
// Guard's Location), the thresholds and forecasts alerted that day, whether
// a source-failure alert is out, and the days billing was paused and a
// failed pause alerted.
type Memo struct {
	Day         string `json:"day,omitempty"`
	Alarmed     []int  `json:"alarmed,omitempty"`
	Forecast    []int  `json:"forecast,omitempty"`
	Unknown     bool   `json:"unknown,omitempty"`
	Paused      string `json:"paused,omitempty"`
	PauseFailed string `json:"pause_failed,omitempty"`
}

// MemoryFileConfig configures a MemoryFile.
type MemoryFileConfig struct {
	// Path of the JSON file. Required; a missing file is an empty record.
	Path string
}

// MemoryFile is a Memory in a JSON file, replaced atomically on each Save
// (temporary file, fsync, rename), so a crash leaves the old record or the
// new one. Content that is not a Memo is an error from Load.
type MemoryFile struct {
	path string
}

var _ Memory = (*MemoryFile)(nil)

// NewMemoryFile validates cfg. It does not read the file.
func NewMemoryFile(cfg MemoryFileConfig) (*MemoryFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("spendguard: MemoryFileConfig.Path is required")
	}
	return &MemoryFile{path: cfg.Path}, nil
}

// Load reads the record.
func (f *MemoryFile) Load(ctx context.Context) (Memo, error) {
	if err := ctx.Err(); err != nil {
		return Memo{}, err
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return Memo{}, nil
	}
	if err != nil {
		return Memo{}, fmt.Errorf("spendguard: memory: %w", err)
	}
	var m Memo
	if err := json.Unmarshal(b, &m); err != nil {
		return Memo{}, fmt.Errorf("spendguard: memory file %s: %w", f.path, err)
	}
	return m, nil
}

// Save writes the record.
func (f *MemoryFile) Save(ctx context.Context, m Memo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(f.path, append(b, '\n')); err != nil {
		return fmt.Errorf("spendguard: memory: %w", err)
	}
	return nil
}

// memo is the Guard's record as a Memo; g.mu is held.
func (g *Guard) memo() Memo {
	keys := func(m map[int]bool) []int {
		var out []int
		for k, v := range m {
			if v {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	return Memo{Day: g.day, Alarmed: keys(g.alarmed), Forecast: keys(g.forecast), Unknown: g.unknown, Paused: g.paused, PauseFailed: g.pauseFailed}
}

// restore takes the Guard's record from m; g.mu is held.
func (g *Guard) restore(m Memo) {
	set := func(ks []int) map[int]bool {
		out := map[int]bool{}
		for _, k := range ks {
			out[k] = true
		}
		return out
	}
	g.day, g.alarmed, g.forecast = m.Day, set(m.Alarmed), set(m.Forecast)
	g.unknown, g.paused, g.pauseFailed = m.Unknown, m.Paused, m.PauseFailed
}
