package ratelimit

import "time"

// SetRedisClock makes l use now instead of Redis TIME, so tests can drive
// the Redis and memory limiters with one clock.
func SetRedisClock(l *Redis, now func() time.Time) { l.now = now }
