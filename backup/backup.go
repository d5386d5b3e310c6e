package backup

import (
	"reflect"

	"github.com/levqor/levqor/internal/backoff"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/levqor/levqor/internal/atomicfile"
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
	// ErrUnauthenticated: with Config.Key, the backup's HMAC tag is
	// missing or does not match: it was not made with this key, or was
	// changed since.
	ErrUnauthenticated = errors.New("backup: authenticity check failed")
	// ErrTargetIsBackup: the restore target is the backup file itself (the
	// same path, a hard link or a symlink to it).
	ErrTargetIsBackup = errors.New("backup: restore target is the backup itself")
	// ErrTargetIsDir: the restore target is a directory.
	ErrTargetIsDir = errors.New("backup: restore target is a directory")
	// ErrInUse: the restore target is in use by another process.
	ErrInUse = errors.New("backup: restore target is in use (stop the server first)")
	// ErrNotRegular: a backup path is a symlink, FIFO, device or directory.
	ErrNotRegular = errors.New("backup: not a regular file")
	// ErrBadName: a backup name (argument or manifest entry) is not a plain
	// file name inside the store's directory.
	ErrBadName = errors.New("backup: not a plain backup file name")
	// ErrNoSpace: not enough free space for the verification copy.
	ErrNoSpace = errors.New("backup: not enough free space")
)

// MinKeyLen is the shortest Config.Key accepted.
const MinKeyLen = 32

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
	// ScratchDir is where Verify writes its restore-test copy. Default:
	// beside the backup being verified (same filesystem; the copy needs as
	// many free bytes as the backup has).
	ScratchDir string
	// Key, when set (at least MinKeyLen bytes), makes each backup also get
	// an HMAC-SHA256 tag (<name>.hmac, beside the sha256sum sidecar), and
	// Verify and Restore refuse a backup whose tag is missing or wrong:
	// the checksum catches corruption, the tag catches tampering. Default
	// nil: no tags; Info.Authenticated stays false.
	Key []byte
	// Check, when set, runs on the restored scratch copy after PRAGMA
	// integrity_check (or pg_restore), e.g. RequireTables("users",
	// "sessions"), so a valid database of another application is not
	// verified. Default none.
	Check func(ctx context.Context, db *sql.DB) error
	// Postgres restores ".dump" backups (pg_dump archives) for Verify,
	// into a scratch database on its server, and for Restore, into a named
	// database. Default nil: such backups cannot be verified or restored.
	Postgres *Postgres
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
	// Authenticated is set by Verify when the HMAC tag was checked.
	Authenticated bool `json:"-"`
}

// Store is a directory of backups. Its methods are safe for concurrent use,
// also by Stores on the same directory in other processes (a file lock,
// .lock in Dir, serialises naming backups and updating the manifest).
type Store struct {
	cfg   Config
	sleep backoff.SleepFunc // between upload attempts; tests record it (export_test.go)
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
	if cfg.Key != nil && len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("backup: Key is %d bytes, want at least %d", len(cfg.Key), MinKeyLen)
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
	s := &Store{cfg: cfg, sleep: backoff.Sleep}
	s.removeStaleTemps()
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// Dir is the directory holding the backups.
func (s *Store) Dir() string { return s.cfg.Dir }

func (s *Store) removeStaleTemps() {
	entries, _ := os.ReadDir(s.cfg.Dir)
	for _, e := range entries {
		if !strings.Contains(e.Name(), atomicfile.TempSuffix) {
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
	return s.BackupSource(ctx, &sqliteSource{db: db, store: s})
}

// Source is a database a Store can back up: SQLite (Backup) or
// PostgreSQL (Postgres).
type Source interface {
	// Ext is the backup files' extension, e.g. ".db" or ".dump".
	Ext() string
	// Dump writes a consistent snapshot of the database to the new file
	// path and returns its page count when it knows one (else 0).
	Dump(ctx context.Context, path string) (pages int, err error)
}

// BackupSource makes a backup of src under the same contract as Backup:
// a temporary file, fsynced and hashed, its sidecars (checksum, and tag
// with a Key) written, renamed into place, the directory fsynced and the
// manifest updated. A failure leaves nothing under a backup's name.
func (s *Store) BackupSource(ctx context.Context, src Source) (Info, error) {
	now := s.cfg.Now().UTC()
	tmp := atomicfile.TempName(s.path(s.backupName(now, src)))
	defer removeTemp(tmp)
	pages, err := src.Dump(ctx, tmp)
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
	// Naming, renaming and recording hold the directory lock, so a Store
	// in another process never takes the same name or loses an entry.
	unlock, err := s.lockDir(ctx)
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	name, now, err := s.freeName(now, src)
	if err != nil {
		return Info{}, err
	}
	info := Info{Name: name, Time: now, Size: size, SHA256: sum, Pages: pages}
	// Sidecars first: a backup under its final name always has them.
	if err := atomicfile.WriteFile(s.path(name+".sha256"), []byte(sum+"  "+name+"\n")); err != nil {
		return Info{}, fmt.Errorf("backup: write sidecar: %w", err)
	}
	if s.cfg.Key != nil {
		if err := atomicfile.WriteFile(s.path(name+".hmac"), []byte(s.tag(sum)+"  "+name+"\n")); err != nil {
			return Info{}, fmt.Errorf("backup: write tag: %w", err)
		}
	}
	if err := os.Rename(tmp, s.path(name)); err != nil {
		_ = os.Remove(s.path(name + ".sha256"))
		_ = os.Remove(s.path(name + ".hmac"))
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := atomicfile.SyncDir(s.cfg.Dir); err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := s.updateManifestLocked(func(m []Info) []Info { return append(m, info) }); err != nil {
		return Info{}, err
	}
	s.cfg.Logger.InfoContext(ctx, "backup: created", "name", name, "bytes", size, "pages", pages, "sha256", sum)
	return info, nil
}

// backupName is the name of src's backup made at t.
func (s *Store) backupName(t time.Time, src Source) string {
	return s.cfg.Prefix + "-" + t.Format(nameTime) + src.Ext()
}

// maxNameTries bounds the milliseconds freeName moves forward.
const maxNameTries = 1000

// freeName names a backup started at t: by t, or, when a backup already
// has that name (another made in the same millisecond), by the first free
// millisecond after it, so names stay unique and in time order. It
// returns the name and the time it stands for. The caller holds the lock.
func (s *Store) freeName(t time.Time, src Source) (string, time.Time, error) {
	for range maxNameTries {
		name := s.backupName(t, src)
		_, err := os.Lstat(s.path(name))
		if errors.Is(err, os.ErrNotExist) {
			return name, t, nil
		}
		if err != nil {
			return "", t, fmt.Errorf("backup: %w", err)
		}
		t = t.Add(time.Millisecond)
	}
	return "", t, fmt.Errorf("backup: no free name within %d ms of %s", maxNameTries, s.backupName(t, src))
}

// sqliteSource dumps a live SQLite database with its online backup API.
type sqliteSource struct {
	db    *sql.DB
	store *Store // for Progress
}

func (*sqliteSource) Ext() string { return ".db" }

func (src *sqliteSource) Dump(ctx context.Context, path string) (int, error) {
	conn, err := src.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var pages int
	err = conn.Raw(func(dc any) error {
		b, err := newOnlineBackup(dc, path)
		if err != nil {
			return err
		}
		pages, err = src.store.copyPages(ctx, b)
		if ferr := b.Finish(); err == nil {
			err = ferr
		}
		return err
	})
	return pages, err
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

// onlineBackup is the part of modernc.org/sqlite's *Backup this package
// uses. It is reached through reflection on the driver connection, so
// importing backup does not import (and so register) the SQLite driver.
type onlineBackup interface {
	Step(n int32) (bool, error)
	Finish() error
	PageCount() int
	Remaining() int
}

// newOnlineBackup starts SQLite's online backup from the connection dc
// (modernc.org/sqlite) into the file dst.
func newOnlineBackup(dc any, dst string) (onlineBackup, error) {
	m := reflect.ValueOf(dc).MethodByName("NewBackup")
	if !m.IsValid() || m.Type().NumIn() != 1 || m.Type().In(0).Kind() != reflect.String || m.Type().NumOut() != 2 {
		return nil, fmt.Errorf("driver %T is not modernc.org/sqlite (no online backup API)", dc)
	}
	out := m.Call([]reflect.Value{reflect.ValueOf(dst)})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	b, ok := out[0].Interface().(onlineBackup)
	if !ok {
		return nil, fmt.Errorf("driver %T: unexpected backup type %T", dc, out[0].Interface())
	}
	return b, nil
}

func (s *Store) copyPages(ctx context.Context, b onlineBackup) (int, error) {
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
	return s.readManifest() // replaced whole by each update: never read half-written
}

// Lookup returns one backup's manifest entry.
func (s *Store) Lookup(name string) (Info, error) {
	if err := validName(name); err != nil {
		return Info{}, err
	}
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
