// Package atomicfile replaces files so that a crash, a full disk or a
// concurrent reader never sees a partial one: the data goes to a
// temporary file beside the target, is fsynced, renamed over the target,
// and the directory is fsynced.
package atomicfile

import (
	"github.com/levqor/levqor/internal/ctxio"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// TempSuffix marks temporary files: "<target>.tmp-<random>". Callers that
// clean up after crashes look for it.
const TempSuffix = ".tmp-"

// TempName returns a fresh temporary name beside path.
func TempName(path string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return path + TempSuffix + hex.EncodeToString(b[:])
}

// WriteFile replaces path with data (mode 0600).
func WriteFile(path string, data []byte) error {
	return Write(context.Background(), path, bytes.NewReader(data))
}

// Write replaces path with what r yields (mode 0600), stopping when ctx is
// cancelled; the target is untouched unless every byte was written.
func Write(ctx context.Context, path string, r io.Reader) error {
	tmp, err := writeTemp(ctx, path, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// CreateExclusive writes data to path only if nothing is there yet, whole
// or not at all: a complete temporary file is hard-linked into place, so a
// concurrent creator sees either no file or a complete one. It returns
// os.ErrExist when path exists.
func CreateExclusive(path string, data []byte) error {
	tmp, err := writeTemp(context.Background(), path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes r to a new, fsynced temporary file beside path and
// returns its name; on error nothing is left behind.
func writeTemp(ctx context.Context, path string, r io.Reader) (string, error) {
	tmp := TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, ctxio.Reader(ctx, r))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
