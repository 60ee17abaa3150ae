package pacehttp

import (
	"net/http"
	"time"
)

// A Decision is a Classifier's verdict on one attempt.
type Decision struct {
	// Retry reports whether the attempt may be repeated.
	Retry bool
	// Reason is a short lower-case explanation, such as "status 429".
	Reason string
	// Hint, when Hint.Source is not empty, is the server's requested wait;
	// the retry layer never waits less than Hint.Wait.
	Hint Hint
}

// A Classifier decides whether an attempt that produced resp or err may be
// repeated. Exactly one of resp and err is non-nil. It must not read a 2xx
// body nor close resp.Body.
type Classifier func(req *http.Request, resp *http.Response, err error) Decision

// A Backoff returns the wait before retry number n (1 for the first retry)
// when the server gave no hint.
type Backoff func(n int) time.Duration

func (c *config) retryMiddleware() Middleware {
	return func(next http.RoundTripper) http.RoundTripper { return next }
}
