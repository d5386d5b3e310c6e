package spendguard

import "github.com/levqor/levqor/internal/backoff"

// SetSleep makes o record its waits instead of sleeping.
func SetSleep(o *OpenAI, sleep backoff.SleepFunc) { o.sleep = sleep }
