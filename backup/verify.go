package backup

import (
	"github.com/levqor/levqor/internal/sqldialect"

	"github.com/levqor/levqor/internal/ctxio"

	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/levqor/levqor/internal/atomicfile"
)

// Verify checks the backup called name in the store's directory (see
// VerifyFile) and records the verification time in the manifest.
func (s *Store) Verify(ctx context.Context, name string) (Info, error) {
	if err := validName(name); err != nil {
		return Info{}, err
	}
	info, err := s.Lookup(name)
	if err != nil {
		return Info{}, err
	}
	got, err := s.VerifyFile(ctx, s.path(name))
	if err != nil {
		return info, err
	}
	if got.SHA256 != info.SHA256 {
		return info, fmt.Errorf("%w: %s: file %s, manifest %s", ErrChecksumMismatch, name, got.SHA256, info.SHA256)
	}
	info.VerifiedAt, info.Authenticated = got.VerifiedAt, got.Authenticated
	err = s.updateManifest(ctx, func(m []Info) []Info {
		for i := range m {
			if m[i].Name == name {
				m[i].VerifiedAt = info.VerifiedAt
			}
		}
		return m
	})
	return info, err
}

// VerifyFile checks the backup file at path, wherever it is: path must be
// a regular file (a symlink, FIFO or device is refused, never followed);
// its bytes must match the sha256sum sidecar beside it (<path>.sha256);
// with Config.Key, the HMAC-SHA256 tag beside it (<path>.hmac) must be
// present and match; and a scratch copy restored from it must open, pass
// PRAGMA integrity_check and Config.Check. The scratch copy is written
// beside path (same filesystem) and removed on every path out; when there
// is not enough free space for it, the error says how much is needed
// where. Cancelling ctx stops the check promptly.
//
// Info.Authenticated reports whether the tag was checked: without a Key,
// a backup that passes is intact but its origin is unknown.
func (s *Store) VerifyFile(ctx context.Context, path string) (Info, error) {
	name := filepath.Base(path)
	info := Info{Name: name}
	f, err := openRegular(path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	want, err := readSidecar(path + ".sha256")
	if err != nil {
		return info, fmt.Errorf("%w: %s: %v", ErrMissingChecksum, name, err)
	}
	got, size, err := hashReader(ctx, f)
	if err != nil {
		return info, fmt.Errorf("backup: verify %s: %w", name, err)
	}
	info.SHA256, info.Size = got, size
	if got != want {
		return info, fmt.Errorf("%w: %s: file %s, sidecar %s", ErrChecksumMismatch, name, got, want)
	}
	if s.cfg.Key != nil {
		if err := s.checkTag(path, got); err != nil {
			return info, err
		}
		info.Authenticated = true
	}
	if err := s.restoreTest(ctx, f, path, size); err != nil {
		return info, err
	}
	info.VerifiedAt = s.cfg.Now().UTC()
	s.cfg.Logger.InfoContext(ctx, "backup: verified", "path", path, "authenticated", info.Authenticated)
	return info, nil
}

// restoreTest restores the backup (already open as f, hash checked) and
// checks the result: an SQLite file is copied to a scratch file beside it,
// a pg_dump archive is restored into a scratch database.
func (s *Store) restoreTest(ctx context.Context, f *os.File, path string, size int64) error {
	name := filepath.Base(path)
	if isPGDump(f) {
		if s.cfg.Postgres == nil {
			return fmt.Errorf("%w: %s is a PostgreSQL dump and the Store has no Config.Postgres to restore it into", ErrCorrupt, name)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := s.cfg.Postgres.test(ctx, ctxio.Reader(ctx, f), s.cfg.Check); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
		return nil
	}
	dir := s.cfg.ScratchDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	if err := enoughSpace(dir, size); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: verify %s: %w", name, err)
	}
	scratch := atomicfile.TempName(filepath.Join(dir, ".verify-"+name))
	defer removeTemp(scratch)
	if err := copyTo(ctx, f, scratch); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("backup: verify %s: %w: the scratch copy needs %d bytes free in %s", name, err, size, dir)
		}
		return fmt.Errorf("backup: verify %s: scratch copy in %s: %w", name, dir, err)
	}
	if err := s.checkDatabase(ctx, scratch); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return nil
}

// isPGDump reports whether f starts with pg_dump's custom-format magic.
func isPGDump(f *os.File) bool {
	head := make([]byte, len(pgdumpMagic))
	n, _ := f.ReadAt(head, 0)
	return n == len(head) && string(head) == pgdumpMagic
}

// enoughSpace fails early, with the figures, when dir cannot hold size
// more bytes.
func enoughSpace(dir string, size int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("backup: scratch directory %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < size {
		return fmt.Errorf("%w: the verification copy needs %d bytes in %s, %d available", ErrNoSpace, size, dir, free)
	}
	return nil
}

// tagMessage is what the HMAC covers: a version label and the file's
// SHA-256, so the tag checks the same bytes as the sidecar.
func tagMessage(sum string) []byte { return []byte("levqor-backup-v1\n" + sum + "\n") }

func (s *Store) tag(sum string) string {
	m := hmac.New(sha256.New, s.cfg.Key)
	m.Write(tagMessage(sum))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Store) checkTag(path, sum string) error {
	b, err := os.ReadFile(path + ".hmac")
	if err != nil {
		return fmt.Errorf("%w: %s: no tag (%s.hmac): %v", ErrUnauthenticated, filepath.Base(path), filepath.Base(path), err)
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	want := s.tag(sum)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%w: %s: the tag does not match (tampered, or made with another key)", ErrUnauthenticated, filepath.Base(path))
	}
	return nil
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkDatabase opens a restored copy: SQLite header, PRAGMA
// integrity_check, then Config.Check.
func (s *Store) checkDatabase(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	head := make([]byte, len(sqliteMagic))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || string(head) != sqliteMagic {
		return errors.New("not an SQLite database")
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := integrityCheck(ctx, db); err != nil {
		return err
	}
	if s.cfg.Check != nil {
		if err := s.cfg.Check(ctx, db); err != nil {
			return fmt.Errorf("schema check: %w", err)
		}
	}
	return nil
}

func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems[:min(len(problems), 5)], "; "))
	}
	return nil
}

// RequireTables returns a Config.Check that passes when every named
// table exists, so a valid SQLite file of another application is not
// taken for a backup of this one.
func RequireTables(names ...string) func(context.Context, *sql.DB) error {
	return func(ctx context.Context, db *sql.DB) error {
		q := `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`
		if d, err := sqldialect.Detect(db); err == nil && d == sqldialect.Postgres {
			q = `SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
		}
		var missing []string
		for _, n := range names {
			var one int
			err := db.QueryRowContext(ctx, q, n).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, n)
				continue
			}
			if err != nil {
				return err
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("tables missing: %s", strings.Join(missing, ", "))
		}
		return nil
	}
}
