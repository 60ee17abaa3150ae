package pacehttp

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// LogHook returns a hook, for WithHook, that logs every Event to logger
// as a message naming its kind ("pacehttp retry") with structured fields:
// attempt, reason, wait, status, error, ignored_hints (malformed rate-limit
// hints the server sent, quoted at most 64 bytes each), partition, rate,
// and the request's method and host.
//
// Levels follow what needs attention: attempts, pacer waits and rate
// changes at Debug, retries and cool-downs at Info, give-ups at Warn.
//
// Nothing that may hold a credential is logged: not the URL's path, which
// can carry IDs and tokens (/bot123456:SECRET/sendMessage), nor its query
// (Google's ?key=), nor any header; the partition is a keyed hash, and a URL
// quoted in an error is cut to its scheme and host (and route). To tell
// endpoints apart, give LogRoute a function that names a request's route.
func LogHook(logger *slog.Logger, opts ...LogOption) func(Event) {
	var cfg logConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
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
		if e.Attempt > 0 { // pacer events belong to no attempt
			attrs = append(attrs, slog.Int("attempt", e.Attempt))
		}
		route := ""
		if e.Request != nil {
			attrs = append(attrs,
				slog.String("method", e.Request.Method),
				slog.String("host", e.Request.URL.Host))
			if cfg.route != nil {
				route = cfg.route(e.Request)
				attrs = append(attrs, slog.String("route", route))
			}
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
			attrs = append(attrs, slog.String("error", redactURL(e.Err.Error(), e.Request, route)))
		}
		if e.IgnoredHints != nil {
			attrs = append(attrs, slog.String("ignored_hints", e.IgnoredHints.Error()))
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

// A LogOption configures LogHook.
type LogOption func(*logConfig)

type logConfig struct {
	route func(*http.Request) string
}

// LogRoute makes LogHook log a "route" field: what route returns for the
// request, a template that names the endpoint without the values in its
// path, such as "/v1/chat/completions" or "/bot{token}/sendMessage". route
// must not return anything secret; it is called only for records the
// logger's level lets through, and must not modify the request.
func LogRoute(route func(*http.Request) string) LogOption {
	return func(c *logConfig) { c.route = route }
}

// redactURL cuts the request's URL, wherever msg quotes it (a *url.Error
// does), to its scheme and host followed by route, so that an error logs
// neither the path nor the query.
func redactURL(msg string, req *http.Request, route string) string {
	if req == nil || req.URL == nil {
		return msg
	}
	u := req.URL
	safe := u.Scheme + "://" + u.Host + route
	msg = strings.ReplaceAll(msg, u.String(), safe)
	if u.User != nil {
		msg = strings.ReplaceAll(msg, u.User.String(), "")
	}
	if u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "")
	}
	if p := u.EscapedPath(); len(p) > 1 {
		msg = strings.ReplaceAll(msg, p, route)
	}
	if p := u.Path; len(p) > 1 {
		msg = strings.ReplaceAll(msg, p, route)
	}
	return msg
}
