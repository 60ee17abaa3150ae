package pacehttp

import (
	"context"
	"log/slog"
)

// LogHook returns a hook, for WithHook, that logs every Event to logger
// as a message naming its kind ("pacehttp retry") with structured fields:
// attempt, reason, wait, status, error, partition, rate, and the request's
// method, host and path.
//
// Levels follow what needs attention: attempts, pacer waits and rate
// changes at Debug, retries and cool-downs at Info, give-ups at Warn. The
// query string and headers are never logged, since they may hold credentials
// (Google's ?key=, Authorization); the partition is already a keyed hash.
func LogHook(logger *slog.Logger) func(Event) {
	return func(e Event) {
		level := slog.LevelInfo
		switch e.Kind {
		case EventAttempt, EventPaced, EventRateChange:
			level = slog.LevelDebug
		case EventGiveUp:
			level = slog.LevelWarn
		}
		ctx := context.Background()
		if e.Request != nil {
			ctx = e.Request.Context()
		}
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
		if e.Request != nil {
			attrs = append(attrs,
				slog.String("method", e.Request.Method),
				slog.String("host", e.Request.URL.Host),
				slog.String("path", e.Request.URL.Path))
		}
		if e.Reason != "" {
			attrs = append(attrs, slog.String("reason", e.Reason))
		}
		if e.Wait != 0 {
			attrs = append(attrs, slog.Duration("wait", e.Wait))
		}
		if e.StatusCode != 0 {
			attrs = append(attrs, slog.Int("status", e.StatusCode))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
		if e.Partition != "" {
			attrs = append(attrs, slog.String("partition", e.Partition))
		}
		if e.Kind == EventRateChange {
			attrs = append(attrs, slog.Float64("rate", e.Rate))
		}
		logger.LogAttrs(ctx, level, "pacehttp "+e.Kind.String(), attrs...)
	}
}
