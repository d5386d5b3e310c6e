package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Defaults for Config.
const (
	DefaultPrefix    = "backup"
	DefaultStepPages = 1024
	// staleTemp is the age past which a leftover temporary file (from a
	// crashed backup) is removed.
	staleTemp = time.Hour
)

// Errors.
var (
	ErrNotFound         = errors.New("backup: no such backup")
	ErrChecksumMismatch = errors.New("backup: checksum mismatch")
	ErrMissingChecksum  = errors.New("backup: checksum sidecar missing or unreadable")
	ErrCorrupt          = errors.New("backup: database failed integrity check")
	ErrTargetExists     = errors.New("backup: restore target exists")
	ErrUploadMismatch   = errors.New("backup: uploaded copy has a different checksum")
)

// Config configures a Store.
type Config struct {
	// Dir holds the backups, their sidecars and the manifest. Required;
	// created if missing (mode 0700).
	Dir string
	// Prefix starts every backup's file name. Default DefaultPrefix.
	Prefix string
	// Progress, if set, is called after each step with pages copied and
	// the total; the backup then copies StepPages at a time.
	Progress func(copied, total int)
	// StepPages is the pages per step when Progress is set. Default
	// DefaultStepPages.
	StepPages int
	// ScratchDir is where Verify restores its test copy. Default os.TempDir().
	ScratchDir string
	// Logger receives each backup, verification and deletion. Default slog.Default().
	Logger *slog.Logger
	// Now names and stamps backups. Default time.Now.
	Now func() time.Time
}

// Info describes one backup.
type Info struct {
	Name       string    `json:"name"`
	Time       time.Time `json:"time"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	Pages      int       `json:"pages"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// Store is a directory of backups. Its methods are safe for concurrent use
// within one process.
type Store struct {
	cfg Config
	mu  sync.Mutex // manifest
}

// validPrefix keeps names safe to use as file names and in sidecars.
var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// nameTime is the UTC timestamp layout inside backup names.
const nameTime = "20060102T150405.000Z"

// New validates cfg, creates Dir and removes temporary files older than an
// hour left by crashed backups.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("backup: Config.Dir is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !validPrefix.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("backup: Prefix %q: letters, digits, - and _ only", cfg.Prefix)
	}
	if cfg.StepPages <= 0 {
		cfg.StepPages = DefaultStepPages
	}
	if cfg.ScratchDir == "" {
		cfg.ScratchDir = os.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: create %s: %w", cfg.Dir, err)
	}
	s := &Store{cfg: cfg}
	s.removeStaleTemps()
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// Dir is the directory holding the backups.
func (s *Store) Dir() string { return s.cfg.Dir }

func (s *Store) removeStaleTemps() {
	entries, _ := os.ReadDir(s.cfg.Dir)
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if fi, err := e.Info(); err == nil && s.cfg.Now().Sub(fi.ModTime()) > staleTemp {
			_ = os.Remove(s.path(e.Name()))
		}
	}
}

// Backup makes a consistent online backup of the SQLite database behind db
// (modernc.org/sqlite) while it stays in use.
func (s *Store) Backup(ctx context.Context, db *sql.DB) (Info, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	defer conn.Close()
	now := s.cfg.Now().UTC()
	name := s.cfg.Prefix + "-" + now.Format(nameTime) + ".db"
	if _, err := os.Lstat(s.path(name)); err == nil {
		return Info{}, fmt.Errorf("backup: %s already exists", name)
	}
	tmp := s.path(name + ".tmp-" + randHex())
	defer removeTemp(tmp)

	var pages int
	err = conn.Raw(func(dc any) error {
		bc, ok := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("driver %T is not modernc.org/sqlite", dc)
		}
		b, err := bc.NewBackup(tmp)
		if err != nil {
			return err
		}
		pages, err = s.copyPages(ctx, b)
		if ferr := b.Finish(); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		return Info{}, fmt.Errorf("backup: copy database: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // backups hold personal data
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	sum, size, err := syncAndHash(tmp)
	if err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	info := Info{Name: name, Time: now, Size: size, SHA256: sum, Pages: pages}
	// Sidecar first: a backup under its final name always has one.
	if err := writeFileAtomic(s.path(name+".sha256"), []byte(sum+"  "+name+"\n")); err != nil {
		return Info{}, fmt.Errorf("backup: write sidecar: %w", err)
	}
	if err := os.Rename(tmp, s.path(name)); err != nil {
		_ = os.Remove(s.path(name + ".sha256"))
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := s.updateManifest(func(m []Info) []Info { return append(m, info) }); err != nil {
		return Info{}, err
	}
	s.cfg.Logger.InfoContext(ctx, "backup: created", "name", name, "bytes", size, "pages", pages, "sha256", sum)
	return info, nil
}

// BackupFile backs up the SQLite database file at path, opening it itself.
func (s *Store) BackupFile(ctx context.Context, path string) (Info, error) {
	if _, err := os.Stat(path); err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return Info{}, fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer db.Close()
	return s.Backup(ctx, db)
}

// maxRestarts is how many times a stepped backup may be restarted by
// concurrent writes before it copies the rest in one step.
const maxRestarts = 3

func (s *Store) copyPages(ctx context.Context, b *sqlite.Backup) (int, error) {
	if s.cfg.Progress == nil {
		// One step holds a read transaction for the whole copy: consistent,
		// and in WAL mode writers carry on.
		if _, err := b.Step(-1); err != nil {
			return 0, err
		}
		return b.PageCount(), nil
	}
	restarts, lastRemaining := 0, -1
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n := int32(s.cfg.StepPages)
		if restarts >= maxRestarts {
			n = -1
		}
		more, err := b.Step(n)
		if err != nil {
			return 0, err
		}
		total, remaining := b.PageCount(), b.Remaining()
		if lastRemaining >= 0 && remaining > lastRemaining {
			restarts++ // a write from another connection restarted the copy
		}
		lastRemaining = remaining
		s.cfg.Progress(total-remaining, total)
		if !more {
			return total, nil
		}
	}
}

// List returns the backups in the manifest, oldest first.
func (s *Store) List() ([]Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readManifest()
}

// Lookup returns one backup's manifest entry.
func (s *Store) Lookup(name string) (Info, error) {
	list, err := s.List()
	if err != nil {
		return Info{}, err
	}
	for _, i := range list {
		if i.Name == name {
			return i, nil
		}
	}
	return Info{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// Verify checks a backup: its bytes match the sidecar checksum, and a
// scratch copy restored from it opens and passes PRAGMA integrity_check.
// On success the manifest records the verification time.
func (s *Store) Verify(ctx context.Context, name string) (Info, error) {
	info, err := s.Lookup(name)
	if err != nil {
		return Info{}, err
	}
	want, err := readSidecar(s.path(name + ".sha256"))
	if err != nil {
		return info, fmt.Errorf("%w: %s: %v", ErrMissingChecksum, name, err)
	}
	got, _, err := hashFile(s.path(name))
	if err != nil {
		return info, fmt.Errorf("backup: verify %s: %w", name, err)
	}
	if got != want || got != info.SHA256 {
		return info, fmt.Errorf("%w: %s: file %s, sidecar %s", ErrChecksumMismatch, name, got, want)
	}
	scratch, err := os.MkdirTemp(s.cfg.ScratchDir, "levqor-verify-")
	if err != nil {
		return info, fmt.Errorf("backup: verify: %w", err)
	}
	defer os.RemoveAll(scratch)
	copyPath := filepath.Join(scratch, "restore.db")
	if err := copyFile(ctx, s.path(name), copyPath); err != nil {
		return info, fmt.Errorf("backup: verify: %w", err)
	}
	if err := integrityCheck(ctx, copyPath); err != nil {
		return info, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	info.VerifiedAt = s.cfg.Now().UTC()
	err = s.updateManifest(func(m []Info) []Info {
		for i := range m {
			if m[i].Name == name {
				m[i].VerifiedAt = info.VerifiedAt
			}
		}
		return m
	})
	s.cfg.Logger.InfoContext(ctx, "backup: verified", "name", name)
	return info, err
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

func integrityCheck(ctx context.Context, path string) error {
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

// RestoreOptions modify Restore.
type RestoreOptions struct {
	// Overwrite replaces an existing file at the target. Stop every process
	// using that database first: it is replaced underneath them.
	Overwrite bool
}

// Restore verifies a backup and writes it to target atomically (temporary
// file in the target's directory, fsync, rename). It refuses an existing
// target unless opts.Overwrite, and removes the target's stale -wal and
// -shm files when it replaces it.
func (s *Store) Restore(ctx context.Context, name, target string, opts RestoreOptions) error {
	if _, err := os.Lstat(target); err == nil && !opts.Overwrite {
		return fmt.Errorf("%w: %s (set Overwrite to replace it)", ErrTargetExists, target)
	}
	if _, err := s.Verify(ctx, name); err != nil {
		return err
	}
	tmp := target + ".tmp-" + randHex()
	defer removeTemp(tmp)
	if err := copyFile(ctx, s.path(name), tmp); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if _, _, err := syncAndHash(tmp); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(target + side); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: restore: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "backup: restored", "name", name, "target", target)
	return nil
}

// delete removes a backup, its sidecar and its manifest entry.
func (s *Store) delete(name string) error {
	for _, p := range []string{s.path(name), s.path(name + ".sha256")} {
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
	if err := writeFileAtomic(s.path("manifest.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	return nil
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func removeTemp(path string) {
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

// writeFileAtomic writes data to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the directory.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(context.Background(), path, bytes.NewReader(data))
}

// writeAtomic is writeFileAtomic for a stream.
func writeAtomic(ctx context.Context, path string, r io.Reader) error {
	tmp := path + ".tmp-" + randHex()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readSidecar parses "<hex>  <name>" (sha256sum's format).
func readSidecar(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum, _, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok || len(sum) != 64 {
		return "", errors.New("malformed sidecar")
	}
	return sum, nil
}

func copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
