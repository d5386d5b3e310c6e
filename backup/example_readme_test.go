package backup_test

import (
	"context"
	"database/sql"

	"github.com/levqor/levqor/backup"
)

// Example_readme is the backup section of the README, compiled.
func Example_readme() {
	ctx := context.Background()
	var (
		db        *sql.DB
		backupKey []byte
		path      string
	)
	if db == nil {
		return // compiled, not run
	}
	// README:begin
	store, _ := backup.New(backup.Config{
		Dir:   "/var/backups/levqor",
		Key:   backupKey,                                 // 32+ bytes: HMAC tags; Verify/Restore refuse untagged or doctored backups
		Check: backup.RequireTables("users", "sessions"), // the restore test also checks the schema
	})
	info, err := store.Backup(ctx, db)                          // live *sql.DB (modernc.org/sqlite)
	_, err = store.Verify(ctx, info.Name)                       // checksum + tag + restore test, recorded in the manifest
	got, err := store.VerifyFile(ctx, "/mnt/offsite/backup.db") // any path; sidecars beside it
	err = store.RestoreFile(ctx, path, "app.db", backup.RestoreOptions{LockFile: "app.db.lock"})
	deleted, err := store.Prune(ctx, backup.Policy{KeepLast: 30, KeepDaily: 7, KeepWeekly: 4})
	offsite, _ := backup.NewDirUploader(backup.DirUploaderConfig{Dir: "/mnt/offsite"})
	err = store.Upload(ctx, info.Name, offsite, backup.UploadOptions{})
	_, err = store.PruneRemote(ctx, offsite, backup.Policy{KeepLast: 30}) // the off-site copies, by the same policy
	// README:end
	_, _, _ = got, deleted, err
}
