package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

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
func (s *Store) delete(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	for _, p := range []string{s.path(name), s.path(name + ".sha256"), s.path(name + ".hmac")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: delete %s: %w", name, err)
		}
	}
	return s.updateManifest(ctx, func(m []Info) []Info {
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

// updateManifest applies f to the manifest under the directory lock.
func (s *Store) updateManifest(ctx context.Context, f func([]Info) []Info) error {
	unlock, err := s.lockDir(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.updateManifestLocked(f)
}

// updateManifestLocked is updateManifest for a caller holding the lock.
func (s *Store) updateManifestLocked(f func([]Info) []Info) error {
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

// lockFile is the file in Dir whose flock serialises the changes of
// every Store on the directory, in this process or another: a cron job
// and a server's scheduled backups, or replicas sharing a volume. The
// manifest itself cannot carry the lock, as each update replaces it.
const lockFile = ".lock"

// lockRetry is how often lockDir tries again while another Store holds
// the lock (each holds it only to name a backup and write the manifest).
const lockRetry = 10 * time.Millisecond

// lockDir takes the directory lock, waiting until it is free or ctx ends.
func (s *Store) lockDir(ctx context.Context) (unlock func(), err error) {
	for {
		unlock, err := lockExclusive(s.path(lockFile))
		if !errors.Is(err, ErrInUse) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}
