package alert

import (
	"context"
	"errors"
	"sync"
)

// Multi delivers each alert to every notifier concurrently and returns the
// errors of those that failed, joined; one failing notifier does not stop
// the others.
func Multi(notifiers ...Notifier) Notifier {
	ns := append([]Notifier(nil), notifiers...)
	return NotifierFunc(func(ctx context.Context, a Alert) error {
		errs := make([]error, len(ns))
		var wg sync.WaitGroup
		for i, n := range ns {
			wg.Go(func() { errs[i] = n.Notify(ctx, a) })
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}
