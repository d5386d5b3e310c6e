package backup_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
)

// TestStoresSharingADirectory: two Stores on one directory, as two
// processes would be (a cron job and a server's scheduled backup, or
// replicas sharing a volume), back up at once, on clocks that read the
// same instant. Every backup gets its own name, its own sidecar and its
// manifest entry; none overwrites another and no manifest update is lost.
func TestStoresSharingADirectory(t *testing.T) {
	db, _ := liveDB(t, 50, 256)
	dir := filepath.Join(t.TempDir(), "backups")
	now := func() time.Time { return t0 }
	stores := []*backup.Store{
		newStore(t, backup.Config{Dir: dir, Now: now, Key: []byte("a backup key of at least 32 bytes!")}),
		newStore(t, backup.Config{Dir: dir, Now: now, Key: []byte("a backup key of at least 32 bytes!")}),
	}
	const each = 10
	var wg sync.WaitGroup
	names := make(chan string, 2*each)
	for _, s := range stores {
		wg.Go(func() {
			for range each {
				info, err := s.Backup(context.Background(), db)
				if err != nil {
					t.Error(err)
					return
				}
				names <- info.Name
			}
		})
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Errorf("two backups were given the name %s", n)
		}
		seen[n] = true
	}
	list, err := stores[0].List()
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2*each || len(list) != 2*each {
		t.Fatalf("%d distinct names, %d manifest entries; want %d each", len(seen), len(list), 2*each)
	}
	for i, info := range list {
		if !seen[info.Name] {
			t.Errorf("manifest entry %s is no backup's", info.Name)
		}
		if i > 0 && !list[i-1].Time.Before(info.Time) {
			t.Errorf("manifest not in time order at %s", info.Name)
		}
		if _, err := stores[1].Verify(context.Background(), info.Name); err != nil {
			t.Error(err)
		}
	}
}
