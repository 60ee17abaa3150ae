package pacehttp

import (
	"net/http"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventAttempt: an attempt is about to be sent to the next transport.
	EventAttempt EventKind = iota + 1
	// EventRetry: the attempt failed and will be repeated after Wait.
	EventRetry
	// EventGiveUp: the attempt failed and will not be repeated; Reason says
	// why (attempts exhausted, wait too long, not replayable, ...).
	EventGiveUp
	// EventPaced: the pacer held the attempt for Wait before letting it go.
	EventPaced
	// EventCoolDown: a server hint closed the partition's gate for Wait.
	EventCoolDown
	// EventRateChange: the adaptive pacer set the partition's rate to Rate.
	EventRateChange
	// EventStoreCall: a Limiter's call to the store its budgets live in
	// (Redis, say) ended. Wait is how long it took; Err is set if it failed.
	// Reason names the operation. Limiters emit it through their own hook
	// option; the pacer never does.
	EventStoreCall
	// EventStoreDown: the Limiter's store is out of reach. Reason says how
	// the Limiter runs meanwhile ("fail open", "fail closed"); Err why.
	EventStoreDown
	// EventStoreUp: the Limiter's store answers again, after Wait out of
	// reach.
	EventStoreUp
	// EventStoreRefused: the Limiter refused a request because its store was
	// out of reach (fail closed); the request was not sent.
	EventStoreRefused
	// EventStoreLog: the store's client logged a message (a failed dial,
	// say), in Err.
	EventStoreLog
)

var eventKindNames = [...]string{
	EventAttempt:      "attempt",
	EventRetry:        "retry",
	EventGiveUp:       "give-up",
	EventPaced:        "paced",
	EventCoolDown:     "cool-down",
	EventRateChange:   "rate-change",
	EventStoreCall:    "store-call",
	EventStoreDown:    "store-down",
	EventStoreUp:      "store-up",
	EventStoreRefused: "store-refused",
	EventStoreLog:     "store-log",
}

// String returns the kind's lower-case name, such as "retry".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}

// An Event is what a hook installed with WithHook receives. Fields that do
// not apply to a kind are zero.
type Event struct {
	Kind EventKind

	// Request is the attempt's request. Hooks must treat it as read-only.
	Request *http.Request

	// Attempt numbers the attempts of one request from 1.
	Attempt int

	// Reason is a short, stable, lower-case description of why a retry,
	// give-up or cool-down happened, such as "status 429" or
	// "wait exceeds max wait". It never contains credentials.
	Reason string

	// Wait is how long the request will wait (EventRetry, EventCoolDown),
	// waited (EventPaced), or would have had to wait when that was the
	// reason to give up (EventGiveUp).
	Wait time.Duration

	// StatusCode is the status of the attempt's response, 0 if none.
	StatusCode int

	// Err is the attempt's transport error, if any.
	Err error

	// IgnoredHints reports the hints of the attempt's answer that were
	// malformed and so ignored (EventRetry, EventGiveUp): Hint.Ignored of
	// the classifier's Decision, a *HeaderError each. Its text quotes at
	// most 64 bytes of each value.
	IgnoredHints error

	// Partition is the hashed key of the pacing partition, "" outside the
	// pacer. It never contains a raw credential.
	Partition string

	// Rate is the partition's new request rate per second (EventRateChange).
	Rate float64
}
