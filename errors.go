package pacehttp

import (
	"errors"
	"fmt"
)

// Why the retry layer stopped repeating a request. They appear as an Event's
// Reason and, when the last attempt ended in a transport error, as the Cause
// of the *RetryError returned, so errors.Is(err, ErrWaitTooLong) works.
var (
	// ErrAttemptsExhausted: the request made every attempt it was allowed.
	ErrAttemptsExhausted = errors.New("attempts exhausted")
	// ErrWaitTooLong: the wait before the next attempt exceeds the max wait.
	ErrWaitTooLong = errors.New("wait exceeds max wait")
	// ErrWaitPastDeadline: the next attempt could not start before the
	// request context's deadline.
	ErrWaitPastDeadline = errors.New("wait exceeds context deadline")
	// ErrBodyNotReplayable: the request body could be sent only once: it
	// has no GetBody and is larger than the buffering limit (or buffering
	// is off), or its GetBody failed.
	ErrBodyNotReplayable = errors.New("request body not replayable")
	// ErrNotIdempotent: the request's method is not idempotent, it has no
	// Idempotency-Key, and the server may have processed it.
	ErrNotIdempotent = errors.New("request not idempotent")
	// ErrRetryBudgetExhausted: too many recent requests were retried; see
	// WithRetryBudget.
	ErrRetryBudgetExhausted = errors.New("retry budget exhausted")
)

// ErrNilURL is returned, as http.Transport does, for a request without a
// URL: there is nothing to send it to, and no partition to pace it in.
var ErrNilURL = errors.New("http: nil Request.URL")

// A RetryError is every error the retry layer returns: the last attempt's
// transport error, the error of a classifier that stopped on a response
// (Decision.Err), the context's error when it ended during a wait, or the
// error of reading the request body before the first attempt. errors.Is
// and errors.As see both Err and Cause.
type RetryError struct {
	// Attempts is the number of attempts made: 0 when the request body
	// could not be read and nothing was sent.
	Attempts int

	// Err is the error of the last attempt, or of the wait or body read
	// that ended the request.
	Err error

	// Cause says why no further attempt was made, when the last attempt's
	// error was not final by itself: it matches one of the Err...
	// sentinels above with errors.Is, and when GetBody failed it also
	// wraps GetBody's error. Nil when Err was final.
	Cause error
}

// Error names the attempt, the cause if any, and the transport error.
func (e *RetryError) Error() string {
	if e.Attempts == 0 && e.Cause == nil {
		return fmt.Sprintf("pacehttp: before the first attempt: %v", e.Err)
	}
	if e.Cause == nil {
		return fmt.Sprintf("pacehttp: attempt %d: %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("pacehttp: gave up after attempt %d (%v): %v", e.Attempts, e.Cause, e.Err)
}

// Unwrap returns the transport error and the cause.
func (e *RetryError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}
