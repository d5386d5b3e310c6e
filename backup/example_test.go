package backup_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/levqor/levqor/backup"
	_ "modernc.org/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "levqor-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db"))
	defer db.Close()
	_, _ = db.Exec("CREATE TABLE users (email TEXT); INSERT INTO users VALUES ('a@example.com')")

	store, _ := backup.New(backup.Config{Dir: filepath.Join(dir, "backups")})
	ctx := context.Background()
	info, err := store.Backup(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = store.Verify(ctx, info.Name)
	fmt.Println("verified:", err == nil)
	err = store.Restore(ctx, info.Name, filepath.Join(dir, "app.db"), backup.RestoreOptions{})
	fmt.Println("refuses to replace the live database:", errors.Is(err, backup.ErrTargetExists))
	// Output:
	// verified: true
	// refuses to replace the live database: true
}
