package alert

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Severity orders alerts from least to most urgent.
type Severity int

// Severities, in increasing urgency. The zero value is SeverityInfo.
const (
	SeverityInfo Severity = iota
	SeveritySuccess
	SeverityWarning
	SeverityCritical
)

var severityNames = [...]string{"info", "success", "warning", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses "info", "success", "warning" or "critical".
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("alert: unknown severity %q", s)
}

// Field is one labelled value shown under an alert's message.
type Field struct {
	Key, Value string
}

// Alert is one notification.
type Alert struct {
	Severity Severity
	Title    string
	Message  string
	Fields   []Field
	// Time is when it happened. Notifiers that show it use time.Now when zero.
	Time time.Time
	// Key identifies "the same alert" for de-duplication. Default:
	// severity and title.
	Key string
	// Silent asks for a notification without sound even for urgent
	// severities.
	Silent bool
}

// DedupKey returns Key, or severity and title when Key is empty.
func (a Alert) DedupKey() string {
	if a.Key != "" {
		return a.Key
	}
	return a.Severity.String() + "|" + a.Title
}

// Notifier delivers alerts.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, a Alert) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, a Alert) error { return f(ctx, a) }
