package alert

import (
	"context"
	"log/slog"
)

// Slog writes alerts to a *slog.Logger: critical at Error, warning at Warn,
// info and success at Info. It never fails, which makes it the graceful
// default when no chat is configured.
type Slog struct{ logger *slog.Logger }

var _ Notifier = (*Slog)(nil)

// NewSlog returns a Slog notifier; nil logs to slog.Default().
func NewSlog(logger *slog.Logger) *Slog {
	if logger == nil {
		logger = slog.Default()
	}
	return &Slog{logger: logger}
}

// Notify implements Notifier.
func (s *Slog) Notify(ctx context.Context, a Alert) error {
	level := slog.LevelInfo
	switch a.Severity {
	case SeverityCritical:
		level = slog.LevelError
	case SeverityWarning:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("severity", a.Severity.String()), slog.String("title", a.Title)}
	if a.Message != "" {
		attrs = append(attrs, slog.String("message", a.Message))
	}
	if !a.Time.IsZero() {
		attrs = append(attrs, slog.Time("at", a.Time))
	}
	if len(a.Fields) > 0 {
		fields := make([]any, 0, len(a.Fields))
		for _, f := range a.Fields {
			fields = append(fields, slog.String(f.Key, f.Value))
		}
		attrs = append(attrs, slog.Group("fields", fields...))
	}
	s.logger.LogAttrs(ctx, level, "alert", attrs...)
	return nil
}
