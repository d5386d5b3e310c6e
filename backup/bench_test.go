package backup_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/levqor/levqor/backup"
)

// BenchmarkBackup100MB compares an online backup of a 100 MB database
// with a plain file copy of the same file; b.SetBytes makes both report
// MB/s, so the ratio is read from one run.
func BenchmarkBackup100MB(b *testing.B) {
	db, path := liveDB(b, 24_000, 4096) // ~100 MB
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("online-backup", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			s, err := backup.New(backup.Config{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Backup(ctx, db); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-copy", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			dst := filepath.Join(b.TempDir(), "copy.db")
			in, _ := os.Open(path)
			out, _ := os.Create(dst)
			if _, err := io.Copy(out, in); err != nil {
				b.Fatal(err)
			}
			_ = out.Sync()
			in.Close()
			out.Close()
		}
	})
}
