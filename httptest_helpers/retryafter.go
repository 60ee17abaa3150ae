package pacetest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// A RetryAfter is the way a refusal announces how long to wait. Servers
// differ: most send whole seconds, some milliseconds, some a date, and many
// proxies nothing at all. Whatever the format, the value is never shorter
// than the real wait, so that a client waiting exactly that long finds room.
type RetryAfter int

const (
	// RetryAfterSeconds sends Retry-After in whole seconds, rounded up and
	// at least 1, as most APIs do: a refusal 10ms from room says 1.
	RetryAfterSeconds RetryAfter = iota
	// RetryAfterNone sends no hint: a bare 429, as many proxies answer.
	RetryAfterNone
	// RetryAfterMillis sends only retry-after-ms, in whole milliseconds
	// rounded up, the header OpenAI's SDKs read first.
	RetryAfterMillis
	// RetryAfterFraction sends Retry-After in seconds with up to three
	// decimals ("0.125"), rounded up: not allowed by RFC 9110, sent anyway by
	// some servers.
	RetryAfterFraction
	// RetryAfterDate sends Retry-After as an HTTP-date, with a Date header
	// for the client to subtract. Both have a resolution of one second: the
	// date is rounded up, Date is the current second.
	RetryAfterDate
)

var retryAfterNames = [...]string{"Seconds", "None", "Millis", "Fraction", "Date"}

// String returns the format's name without its prefix, as "Seconds".
func (f RetryAfter) String() string {
	if f >= 0 && int(f) < len(retryAfterNames) {
		return retryAfterNames[f]
	}
	return "RetryAfter(" + strconv.Itoa(int(f)) + ")"
}

// write sets the headers announcing wait at now, and returns the wait they
// announce as a client reads it: rounded as the format requires, or zero
// when nothing is sent.
func (f RetryAfter) write(h http.Header, now time.Time, wait time.Duration) time.Duration {
	switch f {
	case RetryAfterSeconds:
		s := max(1, int64(math.Ceil(wait.Seconds()-1e-9)))
		h.Set("Retry-After", strconv.FormatInt(s, 10))
		return time.Duration(s) * time.Second
	case RetryAfterMillis:
		ms := max(1, int64((wait+time.Millisecond-1)/time.Millisecond))
		h.Set("Retry-After-Ms", strconv.FormatInt(ms, 10))
		return time.Duration(ms) * time.Millisecond
	case RetryAfterFraction:
		ms := max(1, int64((wait+time.Millisecond-1)/time.Millisecond))
		h.Set("Retry-After", strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
		return time.Duration(ms) * time.Millisecond
	case RetryAfterDate:
		date := now.Truncate(time.Second)
		at := now.Add(wait)
		if t := at.Truncate(time.Second); t.Before(at) {
			at = t.Add(time.Second)
		}
		if !at.After(date) {
			at = date.Add(time.Second)
		}
		h.Set("Date", date.UTC().Format(http.TimeFormat))
		h.Set("Retry-After", at.UTC().Format(http.TimeFormat))
		return at.Sub(date)
	}
	return 0
}
