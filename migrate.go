package pacehttp

import (
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// FromRetryablehttp keeps a go-retryablehttp retry policy, backoff, or both,
// when moving to pacehttp. A nil check keeps DefaultClassifier; a nil
// backoff keeps pacehttp's jittered backoff. See docs/migrate.md.
//
// check decides, for every attempt, as it did under retryablehttp.Client:
//
//   - (true, err): retry; err is ignored, as retryablehttp ignores it until
//     the attempts run out. When they do, pacehttp hands back the last
//     response, as retryablehttp.PassthroughErrorHandler does, because SDKs
//     build their error types from it.
//   - (false, nil): stop, and hand back the response or transport error.
//   - (false, err): stop with err: a response is closed, and the round trip
//     fails with a *RetryError wrapping err (see Decision.Err).
//
// check sees what it saw under retryablehttp.Client: the request's context,
// and a transport error wrapped in a *url.Error, which is what lets
// DefaultRetryPolicy and ErrorPropagatedRetryPolicy spot the errors that
// cannot heal. Like any Classifier it must not read a 2xx body. Event
// Reasons say "check retry", never check's error text, which may hold a URL
// and so a credential.
//
// pacehttp's own rules still apply around check: the server's hints
// (Retry-After and the others of docs/retry.md) set the wait whenever
// present, bounded by WithMaxWait; a request whose method is not idempotent
// is repeated only after an answer that shows the server did not act on it
// (a 429, 503 or 529, a refused connection), unless WithRetryAllMethods is
// set; and unhinted retries draw on the retry budget.
//
// backoff is called for waits without a server hint, with the bounds set by
// WithBackoff (retryablehttp's RetryWaitMin and RetryWaitMax), the
// retryablehttp attempt number (0 before the first retry) and a nil
// response: the hint parsing its built-in backoffs do with the response is
// pacehttp's job, done for every header of docs/retry.md and capped by
// WithMaxWait. Its result is used as is, with no jitter added.
func FromRetryablehttp(check retryablehttp.CheckRetry, backoff retryablehttp.Backoff) RetryOption {
	return retryOption(func(c *config) {
		if check != nil {
			c.classify = checkRetryClassifier(check)
		}
		if backoff != nil {
			// Read the bounds when a wait is needed, not now, so that a
			// WithBackoff given after this option counts too.
			c.backoff = func(n int) time.Duration { return backoff(c.backoffMin, c.backoffMax, n-1, nil) }
		}
	})
}

func checkRetryClassifier(check retryablehttp.CheckRetry) Classifier {
	return func(req *http.Request, resp *http.Response, err error) Decision {
		// DefaultClassifier's view supplies what CheckRetry cannot say:
		// the server's hint, and whether the server left the request
		// unprocessed. It runs first because it may read a small 429 body
		// for a hint; it leaves the body whole for check.
		def := DefaultClassifier(req, resp, err)
		cerr := err
		if err != nil {
			cerr = clientURLError(req, err)
		}
		retry, stop := check(req.Context(), resp, cerr)
		if !retry {
			return Decision{Reason: "check retry", Err: stop}
		}
		return Decision{Retry: true, Unprocessed: def.Unprocessed, Reason: "check retry", Hint: def.Hint}
	}
}
