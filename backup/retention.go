package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultKeepLast is Policy.KeepLast's default.
const DefaultKeepLast = 30

// Policy says which backups Prune keeps (restic-style; the union of the
// rules is kept). The newest verified backup is always kept as well.
type Policy struct {
	// KeepLast keeps the newest N backups. Default DefaultKeepLast (30);
	// it is never below 1, so the newest backup is always kept.
	KeepLast int
	// KeepDaily keeps the newest backup of each of the last N days that
	// have backups (UTC days).
	KeepDaily int
	// KeepWeekly keeps the newest backup of each of the last N ISO weeks
	// that have backups.
	KeepWeekly int
}

// Plan returns which backups of list (any order) the policy keeps and
// which it deletes, each newest first. It changes nothing.
func (p Policy) Plan(list []Info) (keep, drop []Info) {
	if p.KeepLast <= 0 {
		p.KeepLast = DefaultKeepLast
	}
	sorted := slices.SortedFunc(slices.Values(list), func(a, b Info) int { return b.Time.Compare(a.Time) }) // newest first
	kept := make([]bool, len(sorted))
	for i := range min(p.KeepLast, len(sorted)) {
		kept[i] = true
	}
	bucket := func(n int, key func(time.Time) string) {
		seen := map[string]bool{}
		for i, b := range sorted {
			if len(seen) >= n {
				return
			}
			k := key(b.Time.UTC())
			if !seen[k] {
				seen[k] = true
				kept[i] = true
			}
		}
	}
	bucket(p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") })
	bucket(p.KeepWeekly, func(t time.Time) string {
		y, w := t.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	})
	for i, b := range sorted {
		if !b.VerifiedAt.IsZero() {
			kept[i] = true // the newest verified backup
			break
		}
	}
	for i, b := range sorted {
		if kept[i] {
			keep = append(keep, b)
		} else {
			drop = append(drop, b)
		}
	}
	return keep, drop
}

// Prune deletes the backups (with their sidecars) that the policy does not
// keep and returns them. Manifest entries whose name is not a plain file
// name are skipped and reported in the error (ErrBadName).
func (s *Store) Prune(ctx context.Context, p Policy) ([]Info, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	// A manifest entry that is not a plain file name (say "../../x") is
	// refused and reported, never deleted, whatever the policy says.
	var errs []error
	list = slices.DeleteFunc(list, func(i Info) bool {
		if err := validName(i.Name); err != nil {
			errs = append(errs, fmt.Errorf("manifest entry refused: %w", err))
			return true
		}
		return false
	})
	_, drop := p.Plan(list)
	var deleted []Info
	for _, b := range drop {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		if err := s.delete(ctx, b.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		s.cfg.Logger.InfoContext(ctx, "backup: pruned", "name", b.Name)
		deleted = append(deleted, b)
	}
	return deleted, errors.Join(errs...)
}
