package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// A Decision is a Classifier's verdict on one attempt.
type Decision struct {
	// Retry reports whether the attempt may be repeated.
	Retry bool

	// Unprocessed reports that the server did not act on the request
	// (a 429, a 503 or 529, a connection that was refused), so that even a
	// request with a non-idempotent method may be repeated.
	Unprocessed bool

	// Reason is a short lower-case explanation, such as "status 429".
	Reason string

	// Hint, when Hint.Source is not empty, is the server's requested wait;
	// the retry layer never waits less than Hint.Wait. A negative Wait
	// counts as zero.
	Hint Hint

	// Err, on a decision not to retry, turns the attempt into a failure:
	// the retry layer closes the response, if any, and returns a
	// *RetryError wrapping Err instead of it. It is how a go-retryablehttp
	// CheckRetry that returns (false, err) keeps its meaning (see
	// FromRetryablehttp); DefaultClassifier never sets it.
	Err error
}

// A Classifier decides whether an attempt that produced resp or err may be
// repeated. Exactly one of resp and err is non-nil. A Classifier must not
// read a 2xx body; it may read an error body only if it leaves resp.Body
// readable in full (DefaultClassifier does so for Google's RetryInfo).
type Classifier func(req *http.Request, resp *http.Response, err error) Decision

// A Backoff returns the wait before retry number n (1 for the first retry)
// when the server gave no hint. A negative wait counts as zero.
type Backoff func(n int) time.Duration

// WithClassifier replaces DefaultClassifier. A nil c keeps DefaultClassifier.
func WithClassifier(c Classifier) RetryOption {
	return retryOption(func(cfg *config) { cfg.classify = c })
}

// WithBackoffFunc replaces the default backoff (full jitter between 0 and
// an exponentially growing, capped bound; see WithBackoff). A nil b keeps
// the default.
func WithBackoffFunc(b Backoff) RetryOption {
	return retryOption(func(cfg *config) { cfg.backoff = b })
}

// StatusOverloaded is the status some APIs (Anthropic's among them) send
// when the service as a whole is overloaded.
const StatusOverloaded = 529

// maxErrorBodyPeek bounds how much of an error body is read to look for a
// hint carried there instead of in a header.
const maxErrorBodyPeek = 64 << 10

// maxErrorBodyWait bounds how long that read may take.
const maxErrorBodyWait = time.Second

// DefaultClassifier is the retry policy of New. In order:
//
//   - A transport error is retried unless it cannot heal: the request's
//     context ended (or its deprecated Cancel channel closed), a bad URL
//     scheme, too many redirects, an invalid header or a TLS certificate
//     error (go-retryablehttp's judgement). A refused or failed dial is
//     marked Unprocessed. The pacer's refusal to wait past the deadline or
//     the max wait (*WaitError) is final, and so is a Limiter's refusal to
//     reserve (see WithLimiter).
//   - A response below 400 is final.
//   - An X-Should-Retry: true or false response header decides; with
//     false, nothing more is read. With true the server vouches that it did
//     not act on the request, which is then repeated whatever its method.
//   - 429, 503 and 529 are retried and marked Unprocessed; so is a 403 that
//     carries a rate-limit hint, as GitHub sends for its secondary limits.
//     A 429 without a header hint and with a small JSON body is read for a
//     Google RetryInfo; a QuotaFailure on a per-day quota makes it final.
//   - 408, 500, 502 and 504 are retried; the server may have acted on them.
//   - Anything else is final.
//
// The Hint is the server's: see the package's docs/retry.md for the headers
// read and their order. Malformed hints are ignored, as if absent, and
// reported in Hint.Ignored.
func DefaultClassifier(req *http.Request, resp *http.Response, err error) Decision {
	if err != nil {
		return classifyError(req, err)
	}
	code := resp.StatusCode
	if code < 400 {
		return Decision{} // a success is final, whatever its headers say
	}
	should := strings.ToLower(resp.Header.Get("X-Should-Retry"))
	if should == "false" {
		return Decision{Reason: "x-should-retry"}
	}
	if should != "true" && !retryableStatus(code) && code != http.StatusForbidden {
		return Decision{} // final: no hint is worth parsing
	}
	hint, hinted := responseHint(resp)
	if !hinted && code == http.StatusTooManyRequests {
		ignored := hint.Ignored
		var daily bool
		if hint, hinted, daily = bodyHint(resp); daily {
			return Decision{Reason: "daily quota exhausted", Hint: Hint{Ignored: errors.Join(ignored, hint.Ignored)}}
		}
		hint.Ignored = errors.Join(ignored, hint.Ignored)
	}
	if should == "true" {
		// The server vouches that a retry is safe: it did not act on the
		// request, whatever its method (Anthropic and OpenAI send this on
		// the 429s and 529s of POSTs).
		return Decision{Retry: true, Unprocessed: true, Reason: "x-should-retry", Hint: hint}
	}
	switch code {
	case http.StatusTooManyRequests:
		return Decision{Retry: true, Unprocessed: true, Reason: "status 429", Hint: hint}
	case http.StatusServiceUnavailable:
		return Decision{Retry: true, Unprocessed: true, Reason: "status 503", Hint: hint}
	case StatusOverloaded:
		return Decision{Retry: true, Unprocessed: true, Reason: "status 529", Hint: hint}
	case http.StatusForbidden:
		if hinted {
			return Decision{Retry: true, Unprocessed: true, Reason: "status 403 rate limited", Hint: hint}
		}
	case http.StatusRequestTimeout:
		return Decision{Retry: true, Reason: "status 408", Hint: hint}
	case http.StatusInternalServerError:
		return Decision{Retry: true, Reason: "status 500", Hint: hint}
	case http.StatusBadGateway:
		return Decision{Retry: true, Reason: "status 502", Hint: hint}
	case http.StatusGatewayTimeout:
		return Decision{Retry: true, Reason: "status 504", Hint: hint}
	}
	return Decision{}
}

// retryableStatus reports the statuses DefaultClassifier retries by
// themselves (a 403 needs a rate-limit hint as well).
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, StatusOverloaded,
		http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// responseHint returns the server's hint from the headers of an error
// response. Malformed headers are ignored, as if absent, and reported in
// Hint.Ignored.
func responseHint(resp *http.Response) (Hint, bool) {
	hint, ok, err := retryHint(resp.Header, time.Now())
	hint.Ignored = err
	return hint, ok
}

// bodyHint looks for a Google RetryInfo in a small JSON error body, and
// hands the body back readable in full: what was read, then the rest.
func bodyHint(resp *http.Response) (hint Hint, ok, daily bool) {
	if resp.Body == nil || resp.Body == http.NoBody ||
		!strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return Hint{}, false, false
	}
	// A body that drips must not hold the request: past maxErrorBodyWait
	// it is closed where it stands. Either way the caller gets back what
	// was read, then whatever the body still gives.
	var peek bytes.Buffer
	inTime, err := readWithin(resp.Body, &peek, maxErrorBodyPeek, maxErrorBodyWait)
	resp.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(peek.Bytes()), resp.Body), closer: resp.Body}
	if !inTime || err != nil || peek.Len() == maxErrorBodyPeek {
		return Hint{}, false, false // an unreadable or oversized body carries no hint we trust
	}
	hint, ok, daily, err = retryHintFromBody(peek.Bytes())
	hint.Ignored = err
	return hint, ok, daily
}

// finalError reports an error no classifier may retry: the pacer's
// refusal, or a next transport that broke the RoundTripper contract.
func finalError(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := err.(*badAnswerError); ok {
		return true
	}
	return pacerRefused(err)
}

// pacerRefused reports an error of the pacer's own: a wait it would not
// make (*WaitError) or a Limiter that refused to reserve. Trying again
// would only meet the same gate, or the same store out of reach.
func pacerRefused(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*WaitError](err); ok {
		return true
	}
	_, ok := errors.AsType[*limiterError](err)
	return ok
}

func classifyError(req *http.Request, err error) Decision {
	if pacerRefused(err) {
		return Decision{Reason: "pacer refused"}
	}
	if ctxErr := req.Context().Err(); ctxErr != nil {
		return Decision{Reason: "context done"}
	}
	if canceled(req.Cancel) {
		return Decision{Reason: "request canceled"}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// A per-attempt timeout (the request's own context is still live).
		return Decision{Retry: true, Reason: "attempt timeout"}
	}
	// go-retryablehttp recognises the errors that cannot heal, but only
	// inside the *url.Error that http.Client adds and a transport does not.
	if ok, _ := retryablehttp.ErrorPropagatedRetryPolicy(req.Context(), nil, clientURLError(req, err)); !ok {
		return Decision{Reason: "permanent error"}
	}
	if errors.Is(err, syscall.ECONNREFUSED) || isDialError(err) {
		return Decision{Retry: true, Unprocessed: true, Reason: "dial failed"}
	}
	return Decision{Retry: true, Reason: "transport error"}
}

// clientURLError wraps a transport error as http.Client does, for policies
// written against what a client returns (go-retryablehttp's among them).
func clientURLError(req *http.Request, err error) *url.Error {
	op := "Get"
	if m := req.Method; m != "" {
		op = m[:1] + strings.ToLower(m[1:])
	}
	return &url.Error{Op: op, URL: req.URL.String(), Err: err}
}

// isDialError reports an error from establishing the connection, before
// any byte of the request was written.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// idempotent reports whether repeating req is harmless even if the server
// acted on an earlier attempt: its method is idempotent (RFC 9110 9.2.2), or
// it carries an idempotency key.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// fullJitter returns a wait drawn uniformly from [0, min(max, min·2^(n-1))],
// or 0 when either bound is zero or less.
//
// Full jitter, rather than decorrelated jitter, because it is stateless (a
// pure function of the retry number, so one Backoff serves every request),
// and because it spreads a crowd of clients that failed together over the
// widest window, which is what matters when they share one limit.
func fullJitter(minWait, maxWait time.Duration) Backoff {
	return func(n int) time.Duration {
		if minWait <= 0 || maxWait <= 0 {
			return 0
		}
		bound := min(minWait, maxWait)
		for i := 1; i < n && bound < maxWait; i++ {
			if bound > maxWait/2 { // doubling would pass the cap, or overflow
				bound = maxWait
				break
			}
			bound *= 2
		}
		// In uint64, bound+1 cannot overflow, even at math.MaxInt64.
		return time.Duration(rand.N(uint64(bound) + 1))
	}
}

// upwardJitter is added to a server-requested wait so that clients told the
// same instant do not return at that instant together: up to a tenth of the
// wait, at least 50ms and at most one second.
func upwardJitter(wait time.Duration) time.Duration {
	spread := min(max(wait/10, 50*time.Millisecond), time.Second)
	return rand.N(spread)
}
