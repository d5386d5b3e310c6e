package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/internal/testclock"
)

func infos(times ...time.Time) []backup.Info {
	var out []backup.Info
	for _, t := range times {
		out = append(out, backup.Info{Name: t.Format("01-02T15"), Time: t})
	}
	return out
}

func names(list []backup.Info) string {
	var n []string
	for _, i := range list {
		n = append(n, i.Name)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

func TestPolicyPlan(t *testing.T) {
	// Backups every 6 hours for 3 weeks, newest last.
	var times []time.Time
	for h := 0; h < 21*24; h += 6 {
		times = append(times, t0.Add(time.Duration(h)*time.Hour))
	}
	list := infos(times...)
	newest := times[len(times)-1]

	keep, drop := backup.Policy{KeepLast: 3}.Plan(list)
	if len(keep) != 3 || len(drop) != len(list)-3 || keep[0].Time != newest {
		t.Fatalf("keep-last 3: kept %s", names(keep))
	}

	keep, _ = backup.Policy{KeepLast: 1, KeepDaily: 3}.Plan(list)
	// The newest, plus the newest of each of the last 3 days (one of
	// which is the newest itself).
	days := map[string]bool{}
	for _, k := range keep {
		days[k.Time.Format("2006-01-02")] = true
	}
	if len(keep) != 3 || len(days) != 3 {
		t.Fatalf("keep-daily 3: kept %s", names(keep))
	}
	for _, k := range keep {
		// each kept one is the last of its day: 18:00 or the newest
		if k.Time != newest && k.Time.Hour() != 21 {
			t.Fatalf("keep-daily kept %v, not the newest of its day", k.Time)
		}
	}

	keep, _ = backup.Policy{KeepLast: 1, KeepWeekly: 2}.Plan(list)
	weeks := map[int]bool{}
	for _, k := range keep {
		_, w := k.Time.ISOWeek()
		weeks[w] = true
	}
	if len(keep) != 2 || len(weeks) != 2 {
		t.Fatalf("keep-weekly 2: kept %s", names(keep))
	}

	// Default policy keeps 30.
	if keep, _ := (backup.Policy{}).Plan(list); len(keep) != 30 {
		t.Fatalf("default kept %d", len(keep))
	}

	// The newest verified backup survives even outside the policy.
	list[5].VerifiedAt = t0
	list[2].VerifiedAt = t0
	keep, _ = backup.Policy{KeepLast: 2}.Plan(list)
	if len(keep) != 3 || !strings.Contains(names(keep), list[5].Name) || strings.Contains(names(keep), list[2].Name) {
		t.Fatalf("kept %s; want the 2 newest and the newest verified (%s)", names(keep), list[5].Name)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 50, 50)
	clk := testclock.New(t0)
	s := newStore(t, backup.Config{Now: clk.Now})
	var made []backup.Info
	for range 6 {
		info, err := s.Backup(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, info)
		clk.Advance(time.Hour)
	}
	if _, err := s.Verify(ctx, made[1].Name); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.Prune(ctx, backup.Policy{KeepLast: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 3 {
		t.Fatalf("deleted %s", names(deleted))
	}
	left, _ := s.List()
	if names(left) != names([]backup.Info{made[1], made[4], made[5]}) {
		t.Fatalf("left %s", names(left))
	}
	files, _ := os.ReadDir(s.Dir())
	var onDisk []string
	for _, f := range files {
		onDisk = append(onDisk, f.Name())
	}
	if len(onDisk) != 8 { // 3 backups, 3 sidecars, the manifest, the lock file
		t.Fatalf("files left: %v", onDisk)
	}
	for _, d := range deleted {
		for _, f := range onDisk {
			if strings.HasPrefix(f, d.Name) {
				t.Fatalf("%s left behind for pruned %s", f, d.Name)
			}
		}
	}
}

// TestPruneRemote: the off-site copies are pruned by the same policy as
// the local ones, each with its sidecars; files not named like this
// Store's backups are left alone. Before, the off-site directory kept
// every backup ever uploaded.
func TestPruneRemote(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 50, 50)
	clk := testclock.New(t0)
	s := newStore(t, backup.Config{Now: clk.Now, Key: []byte("an off-site key of at least 32 bytes")})
	remote := filepath.Join(t.TempDir(), "offsite")
	up := dirUploader(t, remote)
	if deleted, err := s.PruneRemote(ctx, up, backup.Policy{KeepLast: 2}); err != nil || len(deleted) != 0 {
		t.Fatalf("an off-site directory not made yet: %v, %v", deleted, err)
	}
	var made []backup.Info
	for range 5 {
		info, err := s.Backup(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Upload(ctx, info.Name, up, backup.UploadOptions{}); err != nil {
			t.Fatal(err)
		}
		made = append(made, info)
		clk.Advance(time.Hour)
	}
	others := []string{"notes.txt", "backup-latest.db", "other-" + t0.Format("20060102T150405.000Z") + ".db", made[0].Name + ".bak"}
	for _, n := range others {
		if err := os.WriteFile(filepath.Join(remote, n), []byte("not ours"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.PruneRemote(ctx, up, backup.Policy{KeepLast: 2})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(deleted, " ") != strings.Join([]string{made[2].Name, made[1].Name, made[0].Name}, " ") {
		t.Fatalf("deleted %v", deleted)
	}
	files, _ := os.ReadDir(remote)
	var left []string
	for _, f := range files {
		left = append(left, f.Name())
	}
	want := append([]string{}, others...)
	for _, b := range made[3:] {
		want = append(want, b.Name, b.Name+".hmac", b.Name+".sha256")
	}
	slices.Sort(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Fatalf("left off-site:\n%v\nwant\n%v", left, want)
	}
	// What is left still verifies on its own.
	if got, err := s.VerifyFile(ctx, filepath.Join(remote, made[4].Name)); err != nil || !got.Authenticated {
		t.Fatalf("newest off-site copy: %+v, %v", got, err)
	}
}

// flakyUploader fails its first failures Puts, then stores; with corrupt
// it stores different bytes than it was given.
func dirUploader(t *testing.T, dir string) *backup.DirUploader {
	u, err := backup.NewDirUploader(backup.DirUploaderConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type flakyUploader struct {
	*backup.DirUploader
	failures int
	corrupt  bool
	puts     int
}

func (f *flakyUploader) Put(ctx context.Context, name string, r io.Reader) error {
	f.puts++
	if f.puts <= f.failures {
		_, _ = io.Copy(io.Discard, r)
		return errors.New("503 from the storage gateway")
	}
	if f.corrupt {
		b, _ := io.ReadAll(r)
		b[len(b)/2] ^= 1
		r = bytes.NewReader(b)
	}
	return f.DirUploader.Put(ctx, name, r)
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	db, _ := liveDB(t, 200, 100)
	s := newStore(t, backup.Config{Key: []byte("an off-site key of at least 32 bytes")})
	info, err := s.Backup(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

	remote := filepath.Join(t.TempDir(), "offsite")
	backup.SetSleep(s, sleep)
	ok := &flakyUploader{DirUploader: dirUploader(t, remote), failures: 2}
	if err := s.Upload(ctx, info.Name, ok, backup.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	// Two failed puts of the backup, then the backup, its checksum and its tag.
	if ok.puts != 5 || len(waits) != 2 || waits[0] != 2*time.Second || waits[1] != 4*time.Second {
		t.Fatalf("puts %d waits %v", ok.puts, waits)
	}
	if sum, _ := ok.SHA256(ctx, info.Name); sum != info.SHA256 {
		t.Fatal("remote copy differs")
	}
	// The remote copy stands on its own: verified, authenticated and
	// restored with nothing from the local directory.
	got, err := s.VerifyFile(ctx, filepath.Join(remote, info.Name))
	if err != nil || !got.Authenticated {
		t.Fatalf("remote copy: %+v, %v", got, err)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if err := s.RestoreFile(ctx, filepath.Join(remote, info.Name), target, backup.RestoreOptions{}); err != nil {
		t.Fatalf("restore from the remote copy: %v", err)
	}
	if a, _ := counts(t, target); a != 200 {
		t.Fatalf("restored %d rows, want 200", a)
	}

	bad := &flakyUploader{DirUploader: dirUploader(t, t.TempDir()), corrupt: true}
	err = s.Upload(ctx, info.Name, bad, backup.UploadOptions{})
	if !errors.Is(err, backup.ErrUploadMismatch) || bad.puts != 3 {
		t.Fatalf("corrupting uploader: err %v after %d puts", err, bad.puts)
	}
	if _, err := s.Verify(ctx, info.Name); err != nil {
		t.Fatalf("local backup harmed by a failed upload: %v", err)
	}
	down := &flakyUploader{DirUploader: dirUploader(t, t.TempDir()), failures: 99}
	if err := s.Upload(ctx, info.Name, down, backup.UploadOptions{Attempts: 2}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
}
