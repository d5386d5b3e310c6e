package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// backupLease is how long a replica holds the scheduled backup it runs
// before another may take it over; renewed every backupLease/4 while the
// backup runs, so only a replica that died (or lost the database) lets
// it lapse.
const backupLease = 2 * time.Minute

// backupSchedule is the scheduled backups' record in the database (table
// backup_schedule, one row): every replica with LEVQOR_BACKUP_INTERVAL
// reads it, and the one whose claim lands runs the backup, so replicas
// configured alike back the database up once per interval between them,
// and another takes over when the one that did dies. Each replica's own
// backup directory could not tell them apart: one shared by several, or
// the replicas' own, every replica backed up at each interval.
type backupSchedule struct {
	db     *database
	holder string // this process, in the record: host, pid and a random tag
	now    func() time.Time
}

// scheduleRow is the record as read: raw holds the text the claim
// compares, so that a claim lands only on the record it was decided on.
type scheduleRow struct {
	last, retry, lease time.Time
	lastName, lastBy   string
	holder             string
	raw                [3]string // last_at, retry_at, lease_until
}

func newBackupSchedule(db *database) *backupSchedule {
	host, _ := os.Hostname()
	tag := make([]byte, 3)
	_, _ = rand.Read(tag)
	return &backupSchedule{db: db, holder: fmt.Sprintf("%s pid %d (%x)", host, os.Getpid(), tag), now: time.Now}
}

// errNoSchedule is read's answer on a database older than the schedule
// (the server migrates it when it starts).
var errNoSchedule = errors.New("the database has no backup schedule yet (the server adds it when it starts)")

func (s *backupSchedule) read(ctx context.Context) (scheduleRow, error) {
	var r scheduleRow
	err := s.db.QueryRowContext(ctx, `SELECT last_at, last_name, last_by, retry_at, lease_until, holder FROM backup_schedule WHERE id = 1`).
		Scan(&r.raw[0], &r.lastName, &r.lastBy, &r.raw[1], &r.raw[2], &r.holder)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNoSchedule
	}
	if err != nil {
		return r, fmt.Errorf("backup schedule: %w", err)
	}
	for i, t := range []*time.Time{&r.last, &r.retry, &r.lease} {
		if r.raw[i] == "" {
			continue
		}
		if *t, err = time.Parse(sessionStamp, r.raw[i]); err != nil {
			return r, fmt.Errorf("backup schedule: %w", err)
		}
	}
	return r, nil
}

// due is when the next scheduled backup may start: an interval after the
// newest backup (the record's or, when later, local's: one made before
// the record existed), not before a failed one may be retried, and not
// while another replica's lease runs. The zero time means now.
func (r scheduleRow) due(local time.Time, interval time.Duration, now time.Time) time.Time {
	var at time.Time
	if newest := later(r.last, local); !newest.IsZero() {
		at = newest.Add(interval)
	}
	at = later(at, r.retry)
	if r.lease.After(now) {
		at = later(at, r.lease)
	}
	return at
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// claim takes the lease if the record is still r and no lease runs; false
// means another replica changed it first.
func (s *backupSchedule) claim(ctx context.Context, r scheduleRow) (bool, error) {
	now := s.now()
	if r.lease.After(now) {
		return false, nil
	}
	res, err := s.db.ExecContext(ctx, `UPDATE backup_schedule SET lease_until = ?, holder = ?
		WHERE id = 1 AND last_at = ? AND retry_at = ? AND lease_until = ?`,
		stampText(now.Add(backupLease)), s.holder, r.raw[0], r.raw[1], r.raw[2])
	if err != nil {
		return false, fmt.Errorf("backup schedule: claim: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// renew extends this process's lease.
func (s *backupSchedule) renew(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE backup_schedule SET lease_until = ? WHERE id = 1 AND holder = ?`,
		stampText(s.now().Add(backupLease)), s.holder)
	return err
}

// done records a verified backup made at `at` (by the schedule or the
// backup command) and ends this process's lease, if it holds it.
func (s *backupSchedule) done(ctx context.Context, at time.Time, name string) error {
	stamp := stampText(at)
	_, err := s.db.ExecContext(ctx, `UPDATE backup_schedule SET
		last_name = CASE WHEN last_at < ? THEN ? ELSE last_name END,
		last_by = CASE WHEN last_at < ? THEN ? ELSE last_by END,
		last_at = CASE WHEN last_at < ? THEN ? ELSE last_at END,
		retry_at = '',
		lease_until = CASE WHEN holder = ? THEN '' ELSE lease_until END,
		holder = CASE WHEN holder = ? THEN '' ELSE holder END
		WHERE id = 1`, stamp, name, stamp, s.holder, stamp, stamp, s.holder, s.holder)
	if err != nil {
		return fmt.Errorf("backup schedule: record the backup: %w", err)
	}
	return nil
}

// failed ends this process's lease with a retry time, so that no replica
// tries again sooner.
func (s *backupSchedule) failed(ctx context.Context, retry time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE backup_schedule SET retry_at = ?, lease_until = '', holder = '' WHERE id = 1 AND holder = ?`,
		stampText(retry), s.holder)
	return err
}

// stampText is a time as the record keeps it.
func stampText(t time.Time) string { return t.UTC().Format(sessionStamp) }

// holding runs fn while renewing this process's lease.
func (s *backupSchedule) holding(ctx context.Context, fn func() error) error {
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(backupLease / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed renewal is not fatal: the backup goes on, and
				// at worst another replica starts one too.
				_ = s.renew(ctx)
			}
		}
	}()
	err := fn()
	close(stop)
	<-renewed
	return err
}

// describe is the record for a log line or doctor.
func (r scheduleRow) describe() string {
	if r.last.IsZero() {
		return "none recorded"
	}
	return r.lastName + " at " + r.last.UTC().Format(time.RFC3339) + " by " + strconv.Quote(r.lastBy)
}
