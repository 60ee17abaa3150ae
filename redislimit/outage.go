package redislimit

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pacehttp/pacehttp"
)

// FailMode says what a Limiter does while Redis is out of reach.
type FailMode int

const (
	// FailOpen paces each process on its own, with an in-process budget
	// at the process's share of the fleet's limit (the limit over the
	// processes live when Redis was last reached), until Redis answers
	// again.
	FailOpen FailMode = iota
	// FailClosed refuses to send: the request fails with an
	// *UnavailableError.
	FailClosed
)

// String returns the mode's name, "open" or "closed".
func (m FailMode) String() string {
	if m == FailClosed {
		return "closed"
	}
	return "open"
}

// An UnavailableError reports a reservation refused because Redis was out
// of reach or too slow, under FailClosed. It reaches the caller of the
// RoundTripper wrapped, so errors.As(err, new(*UnavailableError)) works.
type UnavailableError struct {
	Partition string // the hashed partition name
	Err       error  // the Redis error, or a note that Redis is left alone
}

// Error names the partition whose budget Redis could not serve, and why.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("redislimit: redis unavailable for partition %s: %v", e.Partition, e.Err)
}

// Unwrap returns the underlying Redis or network error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// errResting is the cause of an UnavailableError returned without trying
// Redis, during the pause after a failure.
var errResting = errors.New("not retried until the pause after the last failure ends")

// health tracks whether Redis answers. After a failure Redis is left alone
// until downUntil; then a single call, the probe, tries it while the
// others keep failing open or closed without a round trip.
type health struct {
	downUntil atomic.Int64  // unix ns; 0 while Redis answers
	since     atomic.Int64  // unix ns at which the current outage began
	probing   atomic.Bool   // a probe is under way
	began     atomic.Uint64 // outages begun so far
	outages   atomic.Uint64 // outages ended so far
	upAt      atomic.Int64  // unix ns at which the last outage ended
}

// mayTry reports whether a call may go to Redis at now. A true answer
// during an outage makes the caller the probe: it must report with done.
func (h *health) mayTry(now time.Time) bool {
	until := h.downUntil.Load()
	if until == 0 {
		return true
	}
	if now.UnixNano() < until {
		return false
	}
	return h.probing.CompareAndSwap(false, true)
}

// up reports whether Redis answered the last call.
func (h *health) up() bool { return h.downUntil.Load() == 0 }

// failed records a failure at now; it reports whether an outage began.
func (h *health) failed(now time.Time, pause time.Duration) bool {
	began := h.downUntil.Swap(now.Add(pause).UnixNano()) == 0
	if began {
		h.since.Store(now.UnixNano())
		h.began.Add(1)
	}
	h.probing.Store(false)
	return began
}

// succeeded records an answer at now; when it ends an outage, it returns
// how long the outage lasted and true.
func (h *health) succeeded(now time.Time) (time.Duration, bool) {
	if h.downUntil.Load() == 0 || h.downUntil.Swap(0) == 0 {
		return 0, false
	}
	h.upAt.Store(now.UnixNano())
	h.outages.Add(1)
	h.probing.Store(false)
	return now.Sub(time.Unix(0, h.since.Load())), true
}

// recovering reports whether an outage ended less than grace before now:
// other processes of the fleet may still be failing open then.
func (h *health) recovering(now time.Time, grace time.Duration) bool {
	up := h.upAt.Load()
	return up != 0 && now.UnixNano()-up < grace.Nanoseconds()
}

// release ends a probe that reached no verdict (its caller gave up).
func (h *health) release() { h.probing.Store(false) }

// fail turns a failed call at now into the outage it may start, and
// reports it.
func (l *Limiter) fail(now time.Time, partition string, err error) {
	if l.health.failed(now, l.retryAfter) {
		l.emit(pacehttp.Event{Kind: pacehttp.EventStoreDown, Reason: "fail " + l.mode.String(), Err: err, Partition: partition})
	}
}

func (l *Limiter) recovered(now time.Time, partition string) {
	if d, ended := l.health.succeeded(now); ended {
		l.emit(pacehttp.Event{Kind: pacehttp.EventStoreUp, Wait: d, Partition: partition})
	}
}
