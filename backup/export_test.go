package backup

import "github.com/levqor/levqor/internal/backoff"

// SetSleep makes s record its waits between upload attempts.
func SetSleep(s *Store, sleep backoff.SleepFunc) { s.sleep = sleep }
