package backup

import (
	"github.com/levqor/levqor/internal/ctxio"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// openRegular opens path for reading only if it is a regular file: a
// symlink is refused (never followed silently), and a FIFO or device is
// refused without blocking on it (O_NONBLOCK, then fstat).
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symlink; name the file it points to", ErrNotRegular, path)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
		}
		return nil, fmt.Errorf("backup: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a %v, not a regular file", ErrNotRegular, path, fi.Mode().Type())
	}
	return f, nil
}

func removeTemp(path string) {
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

// syncAndHash fsyncs path and returns its SHA-256 and size.
func syncAndHash(path string) (string, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	return hashReader(context.Background(), f)
}

// hashReader returns the hex SHA-256 and length of r, stopping when ctx
// is cancelled.
func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, ctxio.Reader(ctx, r))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readSidecar parses "<hex>  <name>" (sha256sum's format).
func readSidecar(path string) (string, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	sum, _, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok || len(sum) != 64 {
		return "", errors.New("malformed sidecar")
	}
	return sum, nil
}

// copyTo copies r to a new file dst (mode 0600), stopping when ctx is
// cancelled.
func copyTo(ctx context.Context, r io.Reader, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, ctxio.Reader(ctx, r)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
