package pacehttp

import "time"

// Defaults of the retry layer. Each has an Option that overrides it.
const (
	// DefaultMaxAttempts is the number of attempts, first included, made
	// for one request before the last answer is handed back.
	DefaultMaxAttempts = 5

	// DefaultMaxWait caps any single wait, whether the server asked for it
	// or backoff chose it. A longer wait is not slept: the request gives up
	// at once with the last answer.
	DefaultMaxWait = 60 * time.Second

	// DefaultBackoffMin and DefaultBackoffMax bound the exponential backoff
	// used when the server gives no hint.
	DefaultBackoffMin = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second

	// DefaultMaxBufferedBody is the largest request body buffered in memory
	// so that it can be replayed, when the request has no GetBody.
	DefaultMaxBufferedBody = 8 << 20
)

// An Option configures New or NewClient. Each option belongs to the layer
// it configures: a RetryOption configures the retry layer (Retry), a
// PaceOption the pacing layer (Pace), and the few that serve both
// (WithMaxWait, WithHook) are both. New takes all of them; Retry and Pace
// take only their own, so an option handed to a layer that would ignore it
// does not compile.
type Option interface {
	apply(*config)
}

// A RetryOption configures the retry layer: Retry, New and NewClient.
type RetryOption interface {
	Option
	retryLayer()
}

// A PaceOption configures the pacing layer: Pace, New and NewClient.
type PaceOption interface {
	Option
	paceLayer()
}

// A SharedOption configures both layers.
type SharedOption interface {
	RetryOption
	PaceOption
}

type (
	retryOption  func(*config)
	paceOption   func(*config)
	sharedOption func(*config)
)

func (o retryOption) apply(c *config)  { o(c) }
func (o paceOption) apply(c *config)   { o(c) }
func (o sharedOption) apply(c *config) { o(c) }

func (retryOption) retryLayer()  {}
func (paceOption) paceLayer()    {}
func (sharedOption) retryLayer() {}
func (sharedOption) paceLayer()  {}

// config holds the settings of every layer; the pacer also reads the shared
// ones, maxWait and hook.
type config struct {
	maxAttempts     int
	maxWait         time.Duration
	backoffMin      time.Duration
	backoffMax      time.Duration
	maxBufferedBody int64
	retryAllMethods bool
	classify        Classifier
	backoff         Backoff
	hook            func(Event)
	budgetRatio     float64
	budgetFloor     float64
	attemptTimeout  time.Duration

	pace paceConfig // settings of the pacing layer, see pacing.go
}

func newConfig[O Option](opts []O) *config {
	c := &config{
		maxAttempts:     DefaultMaxAttempts,
		maxWait:         DefaultMaxWait,
		backoffMin:      DefaultBackoffMin,
		backoffMax:      DefaultBackoffMax,
		maxBufferedBody: DefaultMaxBufferedBody,
		budgetRatio:     DefaultRetryRatio,
		budgetFloor:     DefaultMinRetriesPerSec,
		pace:            defaultPaceConfig(),
	}
	for _, o := range opts {
		if Option(o) != nil {
			o.apply(c)
		}
	}
	return c
}

// WithMaxAttempts sets how many attempts, the first included, one request
// may make. One or less means a single attempt: no retries.
func WithMaxAttempts(n int) RetryOption {
	return retryOption(func(c *config) { c.maxAttempts = max(n, 1) })
}

// WithMaxWait caps every single wait: server-requested, backoff, or a
// cool-down in the pacer. A wait that would exceed it is not slept; the
// request gives up at once. Zero or less means no cap beyond the request's
// context deadline.
func WithMaxWait(d time.Duration) SharedOption {
	return sharedOption(func(c *config) { c.maxWait = d })
}

// WithBackoff sets the bounds of the exponential backoff used when the
// server gives no hint: the first retry waits up to min, each later one up to
// twice as long, never more than max. Negative bounds count as zero, and a
// zero bound means no wait; a min above max is cut to max.
func WithBackoff(min, max time.Duration) RetryOption {
	return retryOption(func(c *config) { c.backoffMin, c.backoffMax = pos(min), pos(max) })
}

// pos returns d, or 0 if d is negative.
func pos(d time.Duration) time.Duration { return max(d, 0) }

// WithMaxBufferedBody sets the largest request body, in bytes, that the
// retry layer buffers in memory to replay it, when the request has no
// GetBody. A larger body is sent once and not retried. Zero or less
// disables buffering: only requests with GetBody are then retried. Any
// value up to math.MaxInt64 (no limit) is valid.
func WithMaxBufferedBody(n int64) RetryOption {
	return retryOption(func(c *config) { c.maxBufferedBody = max(n, 0) })
}

// WithRetryAllMethods lifts the idempotency rule: requests with any method
// are retried on any retryable failure, even if the server may have
// processed them. Use it only when repeating a request is harmless.
func WithRetryAllMethods() RetryOption {
	return retryOption(func(c *config) { c.retryAllMethods = true })
}

// WithHook calls fn synchronously for every Event of every layer. fn must
// be fast and safe for concurrent use; it must not modify the Event's
// request or response. Several hooks are called in the order given; a nil
// fn is ignored.
func WithHook(fn func(Event)) SharedOption {
	return sharedOption(func(c *config) {
		if prev := c.hook; prev != nil && fn != nil {
			c.hook = func(e Event) { prev(e); fn(e) }
			return
		}
		if fn != nil {
			c.hook = fn
		}
	})
}

func (c *config) emit(e Event) {
	if c.hook != nil {
		c.hook(e)
	}
}
