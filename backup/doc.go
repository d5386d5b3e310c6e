// Package backup makes verified online backups of SQLite databases. It
// uses modernc.org/sqlite's backup API but registers no database/sql
// driver by itself: import the driver in your program.
//
// # Quick start
//
//	import _ "modernc.org/sqlite" // the driver: backup registers none itself
//
//	store, _ := backup.New(backup.Config{Dir: "/var/backups/app", Key: key})
//	info, err := store.Backup(ctx, db)
//	_, err = store.Verify(ctx, info.Name)
//	err = store.RestoreFile(ctx, "/var/backups/app/"+info.Name, "app.db", backup.RestoreOptions{})
//
// # Design
//
// Backup copies a live database with SQLite's online backup API (through
// modernc.org/sqlite's connection), not VACUUM INTO: the backup API copies
// pages as they are, which is faster and keeps a consistent snapshot while
// other connections keep writing (in WAL mode the writers are never
// blocked), and it reports progress page by page. VACUUM INTO would rebuild
// every table and index, costing more time for a smaller file.
//
// Each backup is written to a temporary file, fsynced, hashed, given a
// sha256sum-compatible sidecar (<name>.sha256), renamed into place and the
// directory fsynced: a crash or a full disk never leaves a partial file
// under a backup's name. A manifest (manifest.json) records time, size,
// checksum, page count and when it was last verified. Naming a backup and
// updating the manifest hold a file lock (.lock in the directory), so
// Stores in several processes can share one directory.
//
// Verify checks the checksum and restores the backup to a scratch copy that
// must pass PRAGMA integrity_check; a tampered or truncated backup is
// reported as such. Restore writes a verified backup to a target path
// atomically and refuses to replace an existing database unless asked.
// Prune applies a restic-style Policy (keep-last, keep-daily, keep-weekly)
// and never deletes the newest verified backup. Upload copies a backup
// off-site through an Uploader, retries, and verifies the remote checksum.
package backup
