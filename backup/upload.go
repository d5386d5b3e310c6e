package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/levqor/levqor/internal/atomicfile"
	"github.com/levqor/levqor/internal/backoff"
)

// Uploader stores off-site copies of backups.
type Uploader interface {
	// Put stores r under name, replacing any earlier copy.
	Put(ctx context.Context, name string, r io.Reader) error
	// SHA256 returns the hex SHA-256 of the stored copy, read back from
	// the remote side.
	SHA256(ctx context.Context, name string) (string, error)
}

// Defaults for UploadOptions.
const (
	DefaultUploadAttempts = 3
	DefaultUploadBackoff  = 2 * time.Second
)

// UploadOptions tune Store.Upload. Zero fields take the defaults.
type UploadOptions struct {
	// Attempts is how many times to try. Default DefaultUploadAttempts (3).
	Attempts int
	// Backoff is the first wait between attempts; it doubles. Default
	// DefaultUploadBackoff (2s).
	Backoff time.Duration
}

// Upload copies a backup (after checking it against its sidecar) through u
// and verifies the remote checksum, then copies its sidecars (the checksum,
// and the tag with a Key) the same way, so the remote copy can be verified
// and restored on its own (VerifyFile, RestoreFile) when the local one is
// gone. Failed or mismatched uploads are retried. The local backup is kept
// whatever happens; the error names the last failure.
func (s *Store) Upload(ctx context.Context, name string, u Uploader, opts UploadOptions) error {
	info, err := s.Lookup(name)
	if err != nil {
		return err
	}
	if opts.Attempts < 0 || opts.Backoff < 0 {
		return errors.New("backup: UploadOptions must not be negative")
	}
	if opts.Attempts == 0 {
		opts.Attempts = DefaultUploadAttempts
	}
	if opts.Backoff == 0 {
		opts.Backoff = DefaultUploadBackoff
	}
	attempts := 0
	err = backoff.Do(ctx, backoff.Policy{Attempts: opts.Attempts, Initial: opts.Backoff}, s.sleep, func(n int) error {
		attempts = n
		err := s.uploadOnce(ctx, info, u)
		if err != nil {
			s.cfg.Logger.WarnContext(ctx, "backup: upload failed", "name", name, "attempt", n, "err", err)
			return backoff.Retryable(err, 0)
		}
		s.cfg.Logger.InfoContext(ctx, "backup: uploaded", "name", name, "attempt", n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("backup: upload %s failed after %d attempts: %w", name, attempts, err)
	}
	return nil
}

func (s *Store) uploadOnce(ctx context.Context, info Info, u Uploader) error {
	f, err := os.Open(s.path(info.Name))
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if err := u.Put(ctx, info.Name, io.TeeReader(f, h)); err != nil {
		return err
	}
	if sent := hex.EncodeToString(h.Sum(nil)); sent != info.SHA256 {
		return fmt.Errorf("%w: local file changed since the backup (%s, manifest %s)", ErrChecksumMismatch, sent, info.SHA256)
	}
	remote, err := u.SHA256(ctx, info.Name)
	if err != nil {
		return fmt.Errorf("read back remote checksum: %w", err)
	}
	if remote != info.SHA256 {
		return fmt.Errorf("%w: remote %s, local %s", ErrUploadMismatch, remote, info.SHA256)
	}
	// The sidecars go after the backup they describe: a remote copy with
	// its checksum beside it is complete.
	for _, ext := range []string{".sha256", ".hmac"} {
		b, err := os.ReadFile(s.path(info.Name + ext))
		if ext == ".hmac" && errors.Is(err, os.ErrNotExist) {
			continue // no Key when it was made
		}
		if err != nil {
			return fmt.Errorf("read sidecar: %w", err)
		}
		if err := u.Put(ctx, info.Name+ext, bytes.NewReader(b)); err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		remote, err := u.SHA256(ctx, info.Name+ext)
		if err != nil {
			return fmt.Errorf("read back remote checksum of %s: %w", info.Name+ext, err)
		}
		if want := hex.EncodeToString(sum[:]); remote != want {
			return fmt.Errorf("%w: %s: remote %s, local %s", ErrUploadMismatch, info.Name+ext, remote, want)
		}
	}
	return nil
}

// DirUploaderConfig configures a DirUploader.
type DirUploaderConfig struct {
	// Dir receives the copies (created if missing, mode 0700). Required.
	Dir string
}

// DirUploader uploads into a directory, e.g. a mounted network volume.
// Files are written atomically (temporary file, fsync, rename).
type DirUploader struct {
	dir string
}

var _ Uploader = (*DirUploader)(nil)

// NewDirUploader validates cfg.
func NewDirUploader(cfg DirUploaderConfig) (*DirUploader, error) {
	if cfg.Dir == "" {
		return nil, errors.New("backup: DirUploaderConfig.Dir is required")
	}
	return &DirUploader{dir: cfg.Dir}, nil
}

// Put implements Uploader.
func (d *DirUploader) Put(ctx context.Context, name string, r io.Reader) error {
	if filepath.Base(name) != name {
		return errors.New("backup: upload name must not contain a path")
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(ctx, filepath.Join(d.dir, name), r)
}

// SHA256 implements Uploader by reading the stored file back.
func (d *DirUploader) SHA256(ctx context.Context, name string) (string, error) {
	f, err := openRegular(filepath.Join(d.dir, filepath.Base(name)))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, _, err := hashReader(ctx, f)
	return sum, err
}

// RemoteStore is an Uploader whose copies can be listed and deleted, so
// that PruneRemote keeps the off-site copies as bounded as the local ones.
type RemoteStore interface {
	Uploader
	// List returns the names of the stored files.
	List(ctx context.Context) ([]string, error)
	// Delete removes one stored file; a missing one is not an error.
	Delete(ctx context.Context, name string) error
}

var _ RemoteStore = (*DirUploader)(nil)

// backupExts are the extensions of the built-in Sources' backups.
var backupExts = []string{(*sqliteSource)(nil).Ext(), (*Postgres)(nil).Ext()}

// remoteBackup reads a name this Store would give a backup; false for
// anything else (sidecars, files of other tools), which is never pruned.
func (s *Store) remoteBackup(name string) (Info, bool) {
	rest, ok := strings.CutPrefix(name, s.cfg.Prefix+"-")
	if !ok || len(rest) <= len(nameTime) || validName(name) != nil {
		return Info{}, false
	}
	t, err := time.Parse(nameTime, rest[:len(nameTime)])
	if err != nil || !slices.Contains(backupExts, rest[len(nameTime):]) {
		return Info{}, false
	}
	// Upload read every copy back and compared it: each counts as verified.
	return Info{Name: name, Time: t, VerifiedAt: t}, true
}

// PruneRemote applies p to the backups u holds, as Prune does locally:
// the copies it does not keep are deleted with their sidecars (the backup
// first, so an interrupted prune never leaves a backup without its
// checksum). Files not named like this Store's backups are left alone. It
// returns the names deleted.
func (s *Store) PruneRemote(ctx context.Context, u RemoteStore, p Policy) ([]string, error) {
	names, err := u.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: list off-site copies: %w", err)
	}
	var list []Info
	for _, n := range names {
		if b, ok := s.remoteBackup(n); ok {
			list = append(list, b)
		}
	}
	_, drop := p.Plan(list)
	var deleted []string
	for _, b := range drop {
		for _, n := range []string{b.Name, b.Name + ".sha256", b.Name + ".hmac"} {
			if err := u.Delete(ctx, n); err != nil {
				return deleted, fmt.Errorf("backup: delete off-site %s: %w", n, err)
			}
		}
		s.cfg.Logger.InfoContext(ctx, "backup: pruned off-site copy", "name", b.Name)
		deleted = append(deleted, b.Name)
	}
	return deleted, nil
}

// List implements RemoteStore: the directory's regular files (none when
// it does not exist yet).
func (d *DirUploader) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, ctx.Err()
}

// Delete implements RemoteStore.
func (d *DirUploader) Delete(_ context.Context, name string) error {
	if filepath.Base(name) != name {
		return errors.New("backup: name must not contain a path")
	}
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
