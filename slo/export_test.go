package slo

import "github.com/levqor/levqor/internal/backoff"

// SetSleep makes w skip (or record) its waits between probes.
func SetSleep(w *Watchdog, sleep backoff.SleepFunc) { w.sleep = sleep }
