package alert

import "github.com/levqor/levqor/internal/backoff"

// SetSleep makes t record its waits instead of sleeping.
func SetSleep(t *Telegram, sleep backoff.SleepFunc) { t.sleep = sleep }
