package pacehttp

import (
	"context"
	"io"
	"net/http"
	"time"
)

// maxDrain bounds how much of a discarded response body is read so that its
// connection can be reused; a longer body is closed unread instead, which
// costs that connection and nothing more.
const maxDrain = 64 << 10

// Retry returns the retry layer alone: it repeats an attempt when the
// classifier says it may, waiting as the server asks or, without a hint,
// with jittered exponential backoff. See New for the full chain.
func Retry(opts ...Option) Middleware {
	return newConfig(opts).retryMiddleware()
}

// WithRetryBudget bounds the retries made without a server hint (those
// after transport errors and unhinted 5xx answers) to ratio times the
// number of requests, plus minPerSecond retries each second. When it is
// spent, the last answer is handed back. Retries the server asked for, with
// Retry-After or a reset header, do not count: the pacer already holds them
// back. A negative ratio removes the budget.
func WithRetryBudget(ratio, minPerSecond float64) Option {
	return func(c *config) { c.budgetRatio, c.budgetFloor = ratio, minPerSecond }
}

// WithAttemptTimeout bounds the time each attempt may take until its
// response headers arrive. An attempt that times out is retried like a
// transport error. The body is not bounded, so a long stream is not cut.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) { c.attemptTimeout = d }
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
		return &retrier{next: next, cfg: c, classify: classify, backoff: backoff, budget: budget}
	}
}

type retrier struct {
	next     http.RoundTripper
	cfg      *config
	classify Classifier
	backoff  Backoff
	budget   *retryBudget // nil: unlimited
}

func (r *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	rp, err := newReplay(req, r.cfg.maxBufferedBody)
	if err != nil {
		return nil, err
	}
	if r.budget != nil {
		r.budget.deposit()
	}
	ctx := req.Context()
	for n := 1; ; n++ {
		areq, err := rp.attempt(n)
		if err != nil {
			return nil, &RetryError{Attempts: n - 1, Err: err, Cause: ErrBodyNotReplayable}
		}
		r.cfg.emit(Event{Kind: EventAttempt, Request: areq, Attempt: n})
		resp, err := r.send(areq)
		d := r.classify(areq, resp, err)
		if !d.Retry {
			if err != nil {
				return nil, &RetryError{Attempts: n, Err: err}
			}
			return resp, nil
		}
		wait, cause := r.plan(ctx, areq, &rp, n, d)
		ev := Event{Request: areq, Attempt: n, Wait: wait, Err: err}
		if resp != nil {
			ev.StatusCode = resp.StatusCode
		}
		if cause != nil {
			ev.Kind, ev.Reason = EventGiveUp, d.Reason+": "+cause.Error()
			r.cfg.emit(ev)
			if err != nil {
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
			discard(resp)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, &RetryError{Attempts: n, Err: err}
		}
	}
}

// plan returns the wait before attempt n+1, or why there is none.
func (r *retrier) plan(ctx context.Context, req *http.Request, rp *replay, n int, d Decision) (time.Duration, error) {
	switch {
	case n >= r.cfg.maxAttempts:
		return 0, ErrAttemptsExhausted
	case !rp.replayable():
		return 0, ErrBodyNotReplayable
	case !d.Unprocessed && !r.cfg.retryAllMethods && !idempotent(req):
		return 0, ErrNotIdempotent
	}
	hinted := d.Hint.Source != ""
	var wait time.Duration
	if hinted {
		// Never less than the server asked; upward jitter only, and never
		// past the cap for its sake.
		wait = d.Hint.Wait
		if r.cfg.maxWait > 0 && wait > r.cfg.maxWait {
			return wait, ErrWaitTooLong
		}
		wait += upwardJitter(wait)
		if r.cfg.maxWait > 0 {
			wait = min(wait, r.cfg.maxWait)
		}
	} else {
		if r.budget != nil && !r.budget.withdraw(time.Now()) {
			return 0, ErrRetryBudgetExhausted
		}
		wait = r.backoff(n)
		if r.cfg.maxWait > 0 && wait > r.cfg.maxWait {
			return wait, ErrWaitTooLong
		}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return wait, ErrWaitPastDeadline
	}
	return wait, nil
}

// send makes one attempt, bounded by the attempt timeout if one is set.
func (r *retrier) send(req *http.Request) (*http.Response, error) {
	if r.cfg.attemptTimeout <= 0 {
		return r.next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(r.cfg.attemptTimeout, cancel)
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() || err != nil {
		// Timed out, or failed: nothing of this attempt outlives the call.
		cancel()
		if err == nil {
			resp.Body.Close()
			err = context.DeadlineExceeded
		}
		return nil, err
	}
	// The headers came in time; the body may stream for as long as it needs,
	// and the context is released when the caller closes it.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

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
// its connection returns to the pool, and closes it.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
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
	}
}
