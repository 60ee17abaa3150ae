package pacehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"
)

// maxDrain bounds how much of a discarded response body is read so that its
// connection can be reused; a longer body is closed unread instead, which
// costs that connection and nothing more.
const maxDrain = 64 << 10

// Retry returns the retry layer alone: it repeats an attempt when the
// classifier says it may, waiting as the server asks or, without a hint,
// with jittered exponential backoff. See New for the full chain.
func Retry(opts ...RetryOption) Middleware {
	return newConfig(opts).retryMiddleware()
}

// WithRetryBudget bounds the retries made without a server hint (those
// after transport errors and unhinted 5xx answers) to ratio times the
// number of requests, plus minPerSecond retries each second. When it is
// spent, the last answer is handed back. Retries the server asked for, with
// Retry-After or a reset header, do not count: the pacer already holds them
// back. A negative ratio removes the budget; a NaN ratio counts as zero. A
// minPerSecond of zero or less, or NaN, means no floor; +Inf lets every
// retry pass.
func WithRetryBudget(ratio, minPerSecond float64) RetryOption {
	if math.IsNaN(ratio) {
		ratio = 0
	}
	return retryOption(func(c *config) { c.budgetRatio, c.budgetFloor = ratio, minPerSecond })
}

// WithAttemptTimeout bounds the time each attempt may take from the moment
// it is sent until its response headers arrive. An attempt that times out
// is retried like a transport error. The body is not bounded, so a long
// stream is not cut. Zero or less means no bound, the default.
//
// The time an attempt waits in the pacer's queue does not count: the clock
// starts when the pacer hands it to the base transport. That holds when the
// retry layer is directly over the pacer, as in New; over any other
// transport, the clock starts when the retry layer hands the attempt on.
func WithAttemptTimeout(d time.Duration) RetryOption {
	return retryOption(func(c *config) { c.attemptTimeout = d })
}

func (c *config) retryMiddleware() Middleware {
	classify := c.classify
	if classify == nil {
		classify = DefaultClassifier
	}
	backoff := c.backoff
	if backoff == nil {
		backoff = fullJitter(c.backoffMin, c.backoffMax)
	}
	var budget *retryBudget
	if c.budgetRatio >= 0 {
		budget = newRetryBudget(c.budgetRatio, c.budgetFloor)
	}
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		// A pacer directly below starts the attempt clock itself, when the
		// attempt leaves its queue (see attemptSent).
		p, _ := next.(*pacer)
		return &retrier{next: next, cfg: c, classify: classify, backoff: backoff, budget: budget, pacer: p}
	}
}

type retrier struct {
	next     http.RoundTripper
	cfg      *config
	classify Classifier
	backoff  Backoff
	budget   *retryBudget // nil: unlimited
	// pacer is next when next is the pacer. The retry layer then hands
	// it each attempt with its number: the pacer tells hooks of the
	// attempt when it actually leaves, and starts its attempt clock then
	// (attemptSent). It holds a throttled attempt at its gate, so the
	// retry layer hands that back at once rather than sleep.
	pacer *pacer
}

func (r *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, &RetryError{Err: unsent(req, ErrNilURL)}
	}
	limit := r.cfg.maxBufferedBody
	if r.cfg.maxAttempts <= 1 {
		limit = -1 // no retry to buffer for
	}
	rp, err := newReplay(req, limit)
	if err != nil {
		return nil, &RetryError{Err: err}
	}
	ctx := req.Context()
	areq := rp.first
	var part *partition // the pacer's, once the first attempt has met it
	budget := r.budget
	for n := 1; ; n++ {
		if r.pacer == nil {
			r.cfg.emit(Event{Kind: EventAttempt, Request: areq, Attempt: n})
		}
		resp, err := r.send(areq, n, &part)
		if n == 1 {
			if part != nil {
				budget = part.retryBudget(r.cfg) // the partition's own
			}
			if budget != nil {
				budget.deposit()
			}
		}
		if pacerRefused(err) {
			// Never sent: the pacer would not wait that long, or its
			// Limiter failed. Trying again would meet the same gate.
			r.cfg.emit(Event{Kind: EventGiveUp, Request: areq, Attempt: n, Reason: "pacer refused", Err: err})
			return nil, &RetryError{Attempts: n - 1, Err: err}
		}
		var d Decision
		if !finalError(err) { // final whatever the classifier says
			d = r.classify(areq, resp, err)
		}
		if !d.Retry {
			if d.Err != nil {
				if resp != nil {
					resp.Body.Close()
				}
				return nil, &RetryError{Attempts: n, Err: d.Err}
			}
			if err != nil {
				return nil, &RetryError{Attempts: n, Err: err}
			}
			return resp, nil
		}
		throttled := r.pacer != nil && throttle(resp, d)
		if throttled && !heldByPacer(resp, d) {
			// A wait the pacer did not read (a Google RetryInfo in the
			// body, a custom Classifier's): this attempt waits it here,
			// and the partition's gate holds the others as long.
			r.pacer.hold(part, d.Hint.Wait)
			throttled = false
		}
		wait, next, cause, detail := r.plan(ctx, areq, &rp, n, d, budget, throttled, part)
		ev := Event{Request: areq, Attempt: n, Wait: wait, Err: err, IgnoredHints: d.Hint.Ignored}
		if resp != nil {
			ev.StatusCode = resp.StatusCode
		}
		if cause != nil {
			ev.Kind, ev.Reason = EventGiveUp, d.Reason+": "+cause.Error()
			r.cfg.emit(ev)
			if err != nil {
				if detail != nil {
					cause = fmt.Errorf("%w: GetBody: %w", cause, detail)
				}
				return nil, &RetryError{Attempts: n, Err: err, Cause: cause}
			}
			// The caller gets this answer as the server sent it; the header
			// tells an SDK's own retry loop not to start over on top of ours.
			resp.Header.Set("X-Should-Retry", "false")
			return resp, nil
		}
		ev.Kind, ev.Reason = EventRetry, d.Reason
		r.cfg.emit(ev)
		if resp != nil {
			start := time.Now()
			discard(resp, wait)
			wait -= time.Since(start)
		}
		if err := sleep(ctx, req.Cancel, wait); err != nil {
			rp.unsent(next)
			return nil, &RetryError{Attempts: n, Err: err}
		}
		areq = next
	}
}

// plan returns the wait before attempt n+1 and its request, or why there is
// none: cause is one of the Err... sentinels, and detail GetBody's error
// when that was why.
//
// A throttled attempt (see throttle) over the pacer is checked against the
// caps like any other, but waits for nothing here and spends no retry
// budget: the pacer holds it at its partition's gate until the server is
// likely to take it, and learns from the refusal.
func (r *retrier) plan(ctx context.Context, req *http.Request, rp *replay, n int, d Decision, budget *retryBudget, throttled bool, part *partition) (wait time.Duration, next *http.Request, cause, detail error) {
	wait, err := r.wait(ctx, req, rp, n, d)
	if err != nil {
		return wait, nil, err, nil
	}
	if throttled {
		// A gate that will hold the retry past the deadline or the max
		// wait (closed longer by another request's refusal) is a wait
		// like the retry layer's own: give up now, with this answer,
		// rather than meet the pacer's refusal once it is discarded.
		if err := r.pacer.gateRefuses(ctx, part); err != nil {
			if we, ok := errors.AsType[*WaitError](err); ok && we.Deadline {
				return we.Wait, nil, ErrWaitPastDeadline, nil
			}
			return wait, nil, ErrWaitTooLong, nil
		}
		wait = 0
	}
	// The next attempt's body is got now, before this answer is drained:
	// if GetBody fails, the answer is still there to hand back.
	if next, err = rp.attempt(n + 1); err != nil {
		return wait, nil, ErrBodyNotReplayable, err
	}
	// Last, so that a retry refused for another reason spends nothing.
	if d.Hint.Source == "" && !throttled && budget != nil && !budget.withdraw(time.Now()) {
		rp.unsent(next)
		return 0, nil, ErrRetryBudgetExhausted, nil
	}
	return wait, next, nil, nil
}

// wait returns the wait before attempt n+1, or the rule that forbids it.
func (r *retrier) wait(ctx context.Context, req *http.Request, rp *replay, n int, d Decision) (time.Duration, error) {
	switch {
	case n >= r.cfg.maxAttempts:
		return 0, ErrAttemptsExhausted
	case !rp.replayable():
		return 0, ErrBodyNotReplayable
	case !d.Unprocessed && !r.cfg.retryAllMethods && !idempotent(req):
		return 0, ErrNotIdempotent
	}
	hinted := d.Hint.Source != ""
	d.Hint.Wait = pos(d.Hint.Wait) // a Classifier of the caller's may say anything
	var wait time.Duration
	if hinted {
		// Never less than the server asked; upward jitter only, and never
		// past the cap for its sake.
		wait = d.Hint.Wait
		if r.cfg.maxWait > 0 && wait > r.cfg.maxWait {
			return wait, ErrWaitTooLong
		}
		if j := upwardJitter(wait); wait <= maxHintWait-j {
			wait += j // else saturated: wrapping would make it a short wait
		}
		if r.cfg.maxWait > 0 {
			wait = min(wait, r.cfg.maxWait)
		}
	} else {
		wait = pos(r.backoff(n))
		if r.cfg.maxWait > 0 && wait > r.cfg.maxWait {
			return wait, ErrWaitTooLong
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if hinted && d.Hint.Wait <= left {
			// The server's wait fits: let the jitter use at most half of
			// the slack rather than push the retry past the deadline.
			wait = min(wait, d.Hint.Wait+(left-d.Hint.Wait)/2)
		}
		if left < wait {
			return wait, ErrWaitPastDeadline
		}
	}
	return wait, nil
}

// send makes attempt n, bounded by the attempt timeout if one is set. The
// pacer below, if any, sets *part to the request's partition.
func (r *retrier) send(req *http.Request, n int, part **partition) (*http.Response, error) {
	if r.cfg.attemptTimeout <= 0 {
		return r.checked(req, n, part)
	}
	ctx, cancel := context.WithCancel(req.Context())
	clock := &attemptClock{d: r.cfg.attemptTimeout, cancel: cancel}
	ctx = context.WithValue(ctx, attemptClockKey{}, clock)
	if r.pacer == nil {
		clock.start()
	}
	resp, err := r.checked(req.WithContext(ctx), n, part)
	if timedOut := clock.stop(); timedOut || err != nil {
		// Timed out, or failed: nothing of this attempt outlives the call.
		cancel()
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case timedOut && req.Context().Err() == nil:
			// The transport reports the cancel that cut the attempt as
			// context.Canceled; to the caller, who cancelled nothing, it
			// is a timeout.
			err = context.DeadlineExceeded
		case err == nil:
			// The answer came as the timer fired and the caller's
			// context ended: report that, never a nil answer.
			err = req.Context().Err()
		}
		return nil, err
	}
	// The headers came in time; the body may stream for as long as it needs,
	// and the context is released when the caller closes it.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// An attemptClock is the attempt timeout of one attempt. It starts when the
// attempt leaves: when the pacer, about to hand it to its base transport,
// calls attemptSent, or at once when no pacer is directly below the retry
// layer. A request cut by it has therefore always been sent.
type attemptClock struct {
	d      time.Duration
	cancel context.CancelFunc

	mu      sync.Mutex
	timer   *time.Timer // nil until started
	stopped bool        // the attempt is over: never start
}

// attemptClockKey keys an attempt's clock in its context. Only attempts
// with a timeout carry one, so that the default path allocates nothing.
type attemptClockKey struct{}

// attemptSent starts the attempt timeout of req, if it has one not yet
// started. The pacer calls it just before handing req to its base transport.
func attemptSent(req *http.Request) {
	if c, ok := req.Context().Value(attemptClockKey{}).(*attemptClock); ok {
		c.start()
	}
}

func (c *attemptClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer == nil && !c.stopped {
		c.timer = time.AfterFunc(c.d, c.cancel)
	}
}

// stop ends the clock and reports whether it had run out.
func (c *attemptClock) stop() (timedOut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	return c.timer != nil && !c.timer.Stop()
}

// checked sends req to the next transport and makes its answer safe to
// handle, as http.Client does: a response with an error is dropped (and
// closed), a nil Body is an empty one unless Content-Length says otherwise,
// and a nil Header an empty one. A nil response with a nil error, or a nil
// Body that should hold bytes, is a broken transport: a *badAnswerError,
// which is final.
func (r *retrier) checked(req *http.Request, n int, part **partition) (*http.Response, error) {
	var resp *http.Response
	var err error
	if r.pacer != nil {
		resp, err = r.pacer.roundTrip(req, n, part)
	} else {
		resp, err = r.next.RoundTrip(req)
	}
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case resp == nil:
		return nil, &badAnswerError{fmt.Sprintf("RoundTripper %T returned a nil *Response with a nil error", r.next)}
	}
	if resp.Body == nil {
		if resp.ContentLength > 0 && req.Method != http.MethodHead {
			return nil, &badAnswerError{fmt.Sprintf("RoundTripper %T returned a *Response with content length %d but a nil Body", r.next, resp.ContentLength)}
		}
		resp.Body = http.NoBody
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	return resp, nil
}

// badAnswerError reports a next transport that broke the RoundTripper
// contract. Trying again would meet the same transport.
type badAnswerError struct{ msg string }

func (e *badAnswerError) Error() string { return "pacehttp: " + e.msg }

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// discard drains a little of a response that will not be handed back, so
// its connection returns to the pool, and closes it. Draining counts
// against the wait before the next attempt and stops when that wait is
// over: a body that drips slowly is closed where it stands.
func discard(resp *http.Response, wait time.Duration) {
	if inTime, _ := readWithin(resp.Body, io.Discard, maxDrain, max(wait, minDrainWait)); inTime {
		resp.Body.Close() // else the timer closed it
	}
}

// minDrainWait lets a short body be drained, and its connection reused,
// even before a retry that waits for nothing.
const minDrainWait = 50 * time.Millisecond

// readWithin copies up to n bytes of body to w, for at most d: a body that
// drips slower is closed where it stands, which ends the read. It reports
// whether the read ended in time; if not, body is closed.
func readWithin(body io.ReadCloser, w io.Writer, n int64, d time.Duration) (inTime bool, err error) {
	t := time.AfterFunc(d, func() { body.Close() })
	_, err = io.CopyN(w, body, n)
	if err == io.EOF {
		err = nil
	}
	return t.Stop(), err
}

// sleep waits for d or until ctx ends or cancel (a request's deprecated
// Cancel channel, nil if unset) closes, whichever comes first.
func sleep(ctx context.Context, cancel <-chan struct{}, d time.Duration) error {
	if canceled(cancel) {
		return errRequestCanceled
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cancel:
		return errRequestCanceled
	}
}

// errRequestCanceled ends a request whose Request.Cancel closed. Unlike
// http.Transport's error for the same event, it matches context.Canceled,
// as the cancellation of the request's context does.
var errRequestCanceled = fmt.Errorf("pacehttp: request canceled (Request.Cancel closed): %w", context.Canceled)

// canceled reports whether the Request.Cancel channel c has closed; a nil c
// never does.
func canceled(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// heldByPacer reports whether the pacer's gate holds a throttled attempt
// as long as d asks: d has no hint, or the pacer read the same one from the
// response's headers.
func heldByPacer(resp *http.Response, d Decision) bool {
	if d.Hint.Source == "" {
		return true
	}
	h, ok, _ := retryHint(resp.Header, time.Now())
	return ok && h.Source == d.Hint.Source
}

// throttle reports whether an attempt was refused for the server's limits
// or load (429, 503, 529, or a 403 with a rate-limit hint), which the pacer
// learns from and holds the partition for.
func throttle(resp *http.Response, d Decision) bool {
	if resp == nil {
		return false
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, StatusOverloaded:
		return true
	case http.StatusForbidden:
		return d.Hint.Source != ""
	}
	return false
}
