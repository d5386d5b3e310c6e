package backup

import (
	"github.com/levqor/levqor/internal/atomicfile"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
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
	// Sleep waits between attempts. Default: a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Upload copies a backup (after checking it against its sidecar) through u
// and verifies the remote checksum, retrying failed or mismatched uploads.
// The local backup is kept whatever happens; the error names the last
// failure.
func (s *Store) Upload(ctx context.Context, name string, u Uploader, opts UploadOptions) error {
	info, err := s.Lookup(name)
	if err != nil {
		return err
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultUploadAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultUploadBackoff
	}
	if opts.Sleep == nil {
		opts.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	var last error
	wait := opts.Backoff
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		if attempt > 1 {
			if err := opts.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("backup: upload %s abandoned: %w (last error: %v)", name, err, last)
			}
			wait *= 2
		}
		last = s.uploadOnce(ctx, info, u)
		if last == nil {
			s.cfg.Logger.InfoContext(ctx, "backup: uploaded", "name", name, "attempt", attempt)
			return nil
		}
		s.cfg.Logger.WarnContext(ctx, "backup: upload failed", "name", name, "attempt", attempt, "err", last)
	}
	return fmt.Errorf("backup: upload %s failed after %d attempts: %w", name, opts.Attempts, last)
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
	return nil
}

// DirUploader uploads into a directory, e.g. a mounted network volume.
// Files are written atomically (temporary file, fsync, rename).
type DirUploader struct {
	Dir string
}

var _ Uploader = (*DirUploader)(nil)

// Put implements Uploader.
func (d *DirUploader) Put(ctx context.Context, name string, r io.Reader) error {
	if filepath.Base(name) != name {
		return errors.New("backup: upload name must not contain a path")
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(ctx, filepath.Join(d.Dir, name), r)
}

// SHA256 implements Uploader by reading the stored file back.
func (d *DirUploader) SHA256(ctx context.Context, name string) (string, error) {
	f, err := openRegular(filepath.Join(d.Dir, filepath.Base(name)))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, _, err := hashReader(ctx, f)
	return sum, err
}
