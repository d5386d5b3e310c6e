package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/levqor/levqor/internal/atomicfile"
)

// validName accepts a plain file name: no directory part, not "." or
// "..", no separator or NUL. Manifest entries and names passed to Verify
// and Restore must be such names, so they can only ever mean a file in
// the store's directory.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || name == "manifest.json" {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// delete removes a backup, its sidecars and its manifest entry.
func (s *Store) delete(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	for _, p := range []string{s.path(name), s.path(name + ".sha256"), s.path(name + ".hmac")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: delete %s: %w", name, err)
		}
	}
	return s.updateManifest(func(m []Info) []Info {
		return slices.DeleteFunc(m, func(i Info) bool { return i.Name == name })
	})
}

func (s *Store) readManifest() ([]Info, error) {
	b, err := os.ReadFile(s.path("manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: read manifest: %w", err)
	}
	var m []Info
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("backup: manifest.json is corrupt: %w", err)
	}
	return m, nil
}

func (s *Store) updateManifest(f func([]Info) []Info) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.readManifest()
	if err != nil {
		return err
	}
	m = f(m)
	slices.SortFunc(m, func(a, b Info) int { return a.Time.Compare(b.Time) })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path("manifest.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	return nil
}
