package sitemap

import (
	"context"
	"time"
)

// SetSleep replaces the waits between attempts (tests record them).
func SetSleep(c *IndexNow, f func(context.Context, time.Duration) error) { c.sleep = f }
