package redislimit

import (
	"time"

	"github.com/pacehttp/pacehttp"
)

// Defaults of a Limiter. Each has an Option that overrides it.
const (
	// DefaultPrefix starts every key the Limiter writes.
	DefaultPrefix = "pacehttp:"

	// DefaultTimeout bounds every call to Redis. A reservation that
	// cannot be made in that time is handled as Redis being down.
	DefaultTimeout = 100 * time.Millisecond

	// DefaultRetryAfter is how long the Limiter leaves Redis alone after
	// a failure before one call probes it again; meanwhile it fails open
	// or closed at once, without a round trip.
	DefaultRetryAfter = time.Second

	// DefaultTTL is how long an unused partition's state stays in Redis,
	// the pacer's partition expiry.
	DefaultTTL = pacehttp.DefaultPartitionExpiry
)

// Fixed settings of the shared state.
const (
	// liveWindow is how long a process counts as live after its last
	// call or the instant of its last reservation, whichever is later.
	liveWindow = 3 * time.Second

	// headerTrust is how long limits read from a server's headers stay
	// the shared truth after the last answer that had them, as in the
	// pacer.
	headerTrust = time.Minute

	// maxAhead bounds how far ahead of now a process's latest reservation
	// may start a new bucket (see script.go).
	maxAhead = 10 * time.Second

	// countSlot and countSlots shape the ring in which the script counts
	// the fleet's sends and refusals: a minute in tenths of a second.
	countSlot  = 100 * time.Millisecond
	countSlots = 600
)

// An Option configures a Limiter.
type Option func(*Limiter)

// WithPrefix sets the prefix of every key; the default is DefaultPrefix.
func WithPrefix(p string) Option { return func(l *Limiter) { l.prefix = p } }

// WithTimeout bounds each call to Redis, and Close; the default is
// DefaultTimeout. The client must honour context deadlines for the bound to
// cut a slow dial or read short: set ContextTimeoutEnabled in its options.
// Values of zero or less leave the default.
func WithTimeout(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.timeout = d
		}
	}
}

// WithFailMode chooses what happens while Redis is out of reach; the
// default is FailOpen.
func WithFailMode(m FailMode) Option { return func(l *Limiter) { l.mode = m } }

// WithRetryAfter sets how long Redis is left alone after a failure; the
// default is DefaultRetryAfter. Negative values count as zero.
func WithRetryAfter(d time.Duration) Option {
	return func(l *Limiter) { l.retryAfter = max(d, 0) }
}

// WithTTL sets how long an unused partition's state stays in Redis; the
// default is DefaultTTL. Values of zero or less leave the default.
func WithTTL(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.ttl = d
		}
	}
}

// WithoutWatch stops the Limiter from subscribing to the changes other
// processes make. Their waiters then keep the places they reserved
// across a cool-down or a new rate set elsewhere, as if those came later.
func WithoutWatch() Option { return func(l *Limiter) { l.watch = false } }

// WithHook sends the Limiter's events to fn: every call to Redis
// (pacehttp.EventStoreCall, with its latency and error), Redis going out of
// reach and coming back (EventStoreDown, EventStoreUp), requests refused
// while it is (EventStoreRefused), and go-redis's own messages
// (EventStoreLog). Pass the hook given to pacehttp.WithHook (such as
// pacehttp.LogHook or otelpace.NewHook) to have them beside the pacer's.
// fn is called synchronously and must be fast and safe for concurrent use.
//
// Without WithHook, only EventStoreDown and EventStoreUp are logged, through
// slog.Default(). A nil fn drops every event.
func WithHook(fn func(pacehttp.Event)) Option { return func(l *Limiter) { l.hook = fn } }

// WithFleetSize sets how many processes a Limiter assumes share each
// partition until Redis has counted them: the share of the limit a process
// takes when it fails open before it ever reached Redis (a wrong address,
// Redis down at start). The default is 1, the whole limit. Values below 1
// leave the default.
func WithFleetSize(n int) Option {
	return func(l *Limiter) {
		if n >= 1 {
			l.fleetSize = n
		}
	}
}
