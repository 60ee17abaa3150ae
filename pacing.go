package pacehttp

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of the pacing layer. Each has an Option that overrides it.
const (
	// DefaultRateFloor is the lowest request rate, per second, the
	// adaptive pacer ever sets: a few throttles must not stall a
	// partition for minutes.
	DefaultRateFloor = 1.0

	// DefaultPartitionExpiry is how long a partition may sit unused before
	// its state is dropped. Longer than the minute windows most APIs use,
	// so that what was learned outlives a pause.
	DefaultPartitionExpiry = 10 * time.Minute

	// warmUpWait bounds how long requests of a fresh partition wait for
	// the first answer, whose headers may state the limits. A slow first
	// answer (a long LLM completion) must not hold the rest for long.
	warmUpWait = 500 * time.Millisecond

	// maxCoolDown bounds a gate, so that a hostile Retry-After cannot
	// overflow a time; WithMaxWait fails requests behind a long gate fast.
	maxCoolDown = 24 * time.Hour
)

// A WaitError reports a request the pacer refused to hold, because the wait
// it needed would outlast the request's context deadline or the maximum
// wait (WithMaxWait). The pacer fails such a request at once rather than
// sleep to no purpose, as rate.Limiter.Wait does.
//
// errors.Is(err, ErrWaitTooLong) holds when the maximum wait was the bound;
// errors.Is(err, ErrWaitPastDeadline) and errors.Is(err,
// context.DeadlineExceeded) when the deadline was.
type WaitError struct {
	Wait      time.Duration // the wait the request would have needed
	Limit     time.Duration // what was left of the deadline, or the maximum wait
	Deadline  bool          // the context deadline was the bound
	Partition string        // the hashed partition name
}

// Error says how long the wait would have been and what bounded it.
func (e *WaitError) Error() string {
	bound := "max wait"
	if e.Deadline {
		bound = "context deadline"
	}
	return fmt.Sprintf("pacehttp: pacing wait %v exceeds %s (%v left) in partition %s", e.Wait, bound, e.Limit, e.Partition)
}

// Is reports whether target names the bound the wait exceeded.
func (e *WaitError) Is(target error) bool {
	if e.Deadline {
		return target == ErrWaitPastDeadline || target == context.DeadlineExceeded
	}
	return target == ErrWaitTooLong
}

// limiterError is a Limiter's failure to reserve (a shared store out of
// reach, say). The retry layer does not repeat it: a Limiter that fails
// rather than fall back has decided that the request must not be sent.
type limiterError struct {
	partition string
	err       error
}

func (e *limiterError) Error() string {
	return fmt.Sprintf("pacehttp: reserve in partition %s: %v", e.partition, e.err)
}

func (e *limiterError) Unwrap() error { return e.err }

// paceConfig holds the settings of the pacing layer.
type paceConfig struct {
	rate, tokenRate   float64 // 0: unknown, learn it
	burst, tokenBurst int
	floor             float64
	concurrency       int
	keyFunc           func(*http.Request) string
	costFunc          func(*http.Request) int
	expiry            time.Duration
	limiter           Limiter
	secret            []byte // nil: a random per-process secret
}

func defaultPaceConfig() paceConfig {
	return paceConfig{floor: DefaultRateFloor, expiry: DefaultPartitionExpiry}
}

// Pace returns the pacing layer alone: a Middleware that holds each request
// until its partition's budget allows it. New puts it under the retry layer;
// use Pace directly to pace without retrying, or to compose your own chain.
// Each call returns a middleware with its own state; every RoundTripper it
// wraps shares that state.
func Pace(opts ...PaceOption) Middleware {
	return newConfig(opts).paceMiddleware()
}

func (c *config) paceMiddleware() Middleware {
	var once sync.Once
	var ps *partitions
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		once.Do(func() { ps = newPartitions(c.pace.expiry, c.pace.secret) })
		lim := c.pace.limiter
		if lim == nil {
			lim = localLimiter{}
		}
		return &pacer{cfg: c, next: next, parts: ps, limiter: lim, now: time.Now}
	}
}

// A pacer is the pacing RoundTripper. Every request passes, in order: its
// partition's warm-up (only while the partition is fresh), the concurrency
// cap, and the budget; then it is sent, and its answer teaches the
// partition: headers set the limits, throttles close the gate and feed the
// adaptive estimator.
type pacer struct {
	cfg     *config
	next    http.RoundTripper
	parts   *partitions
	limiter Limiter
	now     func() time.Time
}

func (p *pacer) newPartition(name string, now time.Time) *partition {
	pc := &p.cfg.pace
	part := &partition{name: name, budget: p.limiter.Budget(name), warmed: make(chan struct{}), share: 1}
	part.changed.Store(new(make(chan struct{})))
	if pc.concurrency > 0 {
		part.sem = newSemaphore(pc.concurrency)
	}
	part.est = newEstimator(now, pc.floor, pc.rate, pc.burst)
	part.limited.Store(!math.IsInf(part.est.rate, 1))
	var l Limits
	// lastSet and lastTokSet record the stated rates, so that a header
	// restating them is not taken for a change that wakes every waiter.
	if pc.rate > 0 {
		l.Requests = BucketLimits{Rate: part.est.rate, Burst: headroom(pc.burst), Remaining: -1}
		part.lastSet = part.est.rate
	}
	if pc.tokenRate > 0 {
		l.Tokens = BucketLimits{Rate: pc.tokenRate, Burst: headroom(pc.tokenBurst), Remaining: -1}
		part.lastTokSet = pc.tokenRate
		part.tokens.Store(true)
	}
	if pc.rate > 0 || pc.tokenRate > 0 {
		l.Source = LimitsStated
		// The budget hears of them in setUp, outside the partitions'
		// lock: a shared Limiter may need a round trip to its store.
		part.stated = l
		part.endWarmUp() // the caller stated the limits
	}
	part.watcher, _ = part.budget.(Watcher)
	return part
}

// setUp gives the budget the limits the caller stated, once, before any
// request of the partition reserves.
func (p *pacer) setUp(part *partition, now time.Time) {
	part.setUp.Do(func() {
		if part.stated != (Limits{}) {
			part.budget.SetLimits(context.Background(), now, part.stated)
		}
	})
}

// RoundTrip implements http.RoundTripper.
func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	now := p.now()
	host, cred := partitionKey(req, p.cfg.pace.keyFunc)
	part := p.parts.get(host, cred, now, func(name string) *partition { return p.newPartition(name, now) })
	defer part.active.Add(-1)
	p.setUp(part, now)

	// The clock is read again only if the request may have waited.
	mayWait := part.sem != nil
	first := false
	if !part.warm.Load() {
		mayWait = true
		var err error
		if first, err = p.warmUp(ctx, part); err != nil {
			return nil, p.fail(req, err)
		}
		if first {
			defer part.endWarmUp()
		}
	}

	if part.sem != nil {
		if err := part.sem.acquire(ctx); err != nil {
			return nil, p.fail(req, err)
		}
	}
	// release frees the concurrency slot. A method value of the semaphore,
	// not a closure, so that requests without a cap allocate nothing here.
	release := func() {}
	if part.sem != nil {
		release = part.sem.release
	}

	tokens := 0
	if part.tokens.Load() {
		if p.cfg.pace.costFunc != nil {
			tokens = max(p.cfg.pace.costFunc(req), 1)
		} else {
			tokens = defaultCost(req)
		}
	}
	if mayWait {
		now = p.now()
	}
	// A waiter whose partition changes under it (a cool-down, a new rate)
	// gives its reservation back and reserves again, so that it neither
	// slips out past a gate that closed after it reserved nor keeps a slot
	// computed at an outdated rate.
	start := now
	for {
		changed := part.changed.Load()
		var remote <-chan struct{} // nil: never ready
		if part.watcher != nil {
			remote = part.watcher.Changed()
		}
		wait, cancel, err := part.budget.Reserve(ctx, now, 1, tokens)
		if err != nil {
			release()
			return nil, p.fail(req, &limiterError{partition: part.name, err: err})
		}
		if wait <= 0 {
			break
		}
		again, err := p.sleep(ctx, part.name, now, wait, part.firmPart(now, wait), *changed, remote)
		if err != nil || again {
			if cancel != nil {
				cancel()
			}
		}
		if err != nil {
			release()
			return nil, p.fail(req, err)
		}
		now = p.now()
		if !again {
			break
		}
	}
	if now.After(start) {
		p.cfg.emit(Event{Kind: EventPaced, Request: req, Wait: now.Sub(start), Partition: part.name})
	}

	attemptSent(req)
	resp, err := p.next.RoundTrip(req)
	p.observe(part, req, now, resp, err)
	if part.sem != nil {
		// The slot is held until the body is closed, but not for a 101,
		// whose body is the connection itself: an io.ReadWriter that
		// net/http hands over, and a wrapper would hide its Write.
		if err != nil || resp == nil || resp.Body == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			release()
		} else {
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
		}
	}
	return resp, err
}

// fail closes the request body, as the RoundTripper contract asks of a
// transport that returns without sending, and returns err.
func (p *pacer) fail(req *http.Request, err error) error {
	if req.Body != nil {
		req.Body.Close()
	}
	return err
}

// warmUp lets the first request of a fresh partition go alone and holds the
// others until its answer arrives (or warmUpWait passes). It reports
// whether the caller is that first request.
func (p *pacer) warmUp(ctx context.Context, part *partition) (first bool, err error) {
	if part.probe.CompareAndSwap(false, true) {
		return true, nil
	}
	t := time.NewTimer(warmUpWait)
	defer t.Stop()
	select {
	case <-part.warmed:
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return false, nil
}

func (part *partition) endWarmUp() {
	part.warm.Store(true)
	part.warmOnce.Do(func() { close(part.warmed) })
}

// sleep waits d, or fails at once if firm, the part of d that is certain,
// cannot be waited in full. It returns early with again set when changed or
// remote is closed.
func (p *pacer) sleep(ctx context.Context, name string, now time.Time, d, firm time.Duration, changed, remote <-chan struct{}) (again bool, err error) {
	if mw := p.cfg.maxWait; mw > 0 && firm > mw {
		return false, &WaitError{Wait: firm, Limit: mw, Partition: name}
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(firm).After(dl) {
		return false, &WaitError{Wait: firm, Limit: max(dl.Sub(now), 0), Deadline: true, Partition: name}
	}
	if mw := p.cfg.maxWait; mw > 0 && d > mw {
		// A provisional wait is never slept past the cap in one go: by
		// then the rate will have been learned, and the request reserves
		// again.
		d, again = mw, true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return again, nil
	case <-changed:
		return true, nil
	case <-remote:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// observe teaches the partition what an answer says about the server's
// limits. now is when the request was sent.
func (p *pacer) observe(part *partition, req *http.Request, sent time.Time, resp *http.Response, err error) {
	if err != nil || resp == nil {
		return
	}
	h := resp.Header
	headers := hasRateLimitHeaders(h)
	code := resp.StatusCode
	throttled := code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == StatusOverloaded
	if !headers && !throttled && !part.limited.Load() {
		// The common case, a success from a partition with no limit
		// known: the estimator needs only the count, not the time.
		part.mu.Lock()
		part.est.accept(sent)
		part.mu.Unlock()
		return
	}
	now := p.now()
	if headers {
		if qs, _ := parseQuotas(h, now); len(qs) > 0 {
			p.applyQuotas(part, req, now, qs)
		}
	}
	if throttled {
		hint, ok, _ := retryHint(h, now)
		if !ok && resp.StatusCode != http.StatusTooManyRequests {
			return // an outage, not a limit
		}
		reopen := now
		if ok && hint.Wait > 0 {
			reopen = now.Add(min(hint.Wait, maxCoolDown))
		}
		part.mu.Lock()
		r, b, changed := part.est.throttle(now, sent, reopen)
		if changed {
			part.lastSet = r
		}
		part.limited.Store(!math.IsInf(r, 1))
		part.mu.Unlock()
		if changed {
			p.setRate(part, req, now, r, b, true)
		}
		if !reopen.After(now) {
			return
		}
		if extended, closed := part.extendGate(now, reopen); extended {
			part.budget.CoolDown(context.WithoutCancel(req.Context()), now, reopen)
			part.signal()
			if !closed {
				return
			}
			if p.cfg.pace.limiter == nil {
				// A Limiter of the caller's (Redis, say) already
				// holds one budget for all its clients.
				part.cutShare(now)
			}
			p.cfg.emit(Event{Kind: EventCoolDown, Request: req, Reason: fmt.Sprintf("status %d", resp.StatusCode),
				Wait: hint.Wait, StatusCode: resp.StatusCode, Partition: part.name})
		}
		return
	}
	part.mu.Lock()
	part.est.accept(sent)
	if !part.limited.Load() {
		// Unthrottled: the estimator needs only the count.
		part.mu.Unlock()
		return
	}
	r, changed := part.est.tick(now)
	b := part.est.burst
	// A material change re-times the waiters; a small step that lasts (the
	// estimate proven, the slow raise) is applied in place, waking no one:
	// a waiter woken without its reservation voided would only pile debt
	// on the bucket. Other small steps, a probe's, wait to add up.
	wake := changed && material(&part.lastSet, r)
	if changed && !wake && part.est.settled {
		part.lastSet, wake, changed = r, false, true
	} else {
		changed = wake
	}
	part.est.settled = false
	part.mu.Unlock()
	if changed {
		p.setRate(part, req, now, r, b, wake)
	}
}

func (p *pacer) setRate(part *partition, req *http.Request, now time.Time, r, b float64, wake bool) {
	part.budget.SetLimits(context.WithoutCancel(req.Context()), now, Limits{Requests: BucketLimits{Rate: r, Burst: headroom(int(b)), Remaining: -1}})
	if wake {
		part.signal()
	}
	// A probe moves the rate in small steps; hooks hear of a change only
	// once it amounts to a tenth, so that a log is not flooded.
	if prev := math.Float64frombits(part.reported.Load()); !near(r, prev, materialChange) {
		part.reported.Store(math.Float64bits(r))
		p.cfg.emit(Event{Kind: EventRateChange, Request: req, Rate: r, Partition: part.name})
	}
}

// applyQuotas sets the partition's buckets from what the server reports,
// and holds the partition when a quota is spent until its next unit.
func (p *pacer) applyQuotas(part *partition, req *http.Request, now time.Time, qs []quota) {
	var reqQ, tokQ *quota
	for i := range qs {
		q := &qs[i]
		switch q.Name {
		case "requests":
			reqQ = q
		case "tokens":
			tokQ = q
		case "input-tokens":
			if tokQ == nil {
				tokQ = q
			}
		case "output-tokens":
		default: // an IETF policy: counted in requests unless named
			if reqQ == nil {
				reqQ = q
			}
		}
	}
	l := Limits{Source: LimitsFromHeaders}
	var hold time.Duration
	share := part.shareAt(now)
	bucket := func(q *quota) BucketLimits {
		bl := BucketLimits{Rate: part.headerRate(now, q) * share, Remaining: q.Remaining}
		if q.Limit > 0 {
			bl.Burst = headroom(int(max(float64(min(q.Limit, math.MaxInt32))*share, 1)))
		}
		if q.Remaining > 0 {
			bl.Remaining = int64(float64(q.Remaining) * share)
		}
		if !q.Refill || bl.Rate <= 0 {
			// A refilling bucket synced to Remaining holds requests
			// by itself; a window's quota returns only at its reset.
			hold = max(hold, q.nextUnit())
		}
		return bl
	}
	if reqQ != nil {
		l.Requests = bucket(reqQ)
		part.mu.Lock()
		if !part.est.trusted(now) {
			part.headersSince = now
		}
		part.est.fromHeaders(now, l.Requests.Rate, reqQ.Limit)
		if !material(&part.lastSet, l.Requests.Rate) {
			l.Requests.Rate = 0 // keep the rate, and the waiters' places
		}
		part.limited.Store(!math.IsInf(part.est.rate, 1))
		part.mu.Unlock()
	} else {
		l.Requests.Remaining = -1
	}
	if tokQ != nil {
		l.Tokens = bucket(tokQ)
		if l.Tokens.Rate > 0 {
			part.tokens.Store(true)
		}
		part.mu.Lock()
		if !material(&part.lastTokSet, l.Tokens.Rate) {
			l.Tokens.Rate = 0 // keep the rate, and the waiters' places
		}
		part.mu.Unlock()
	} else {
		l.Tokens.Remaining = -1
	}
	part.budget.SetLimits(context.WithoutCancel(req.Context()), now, l)
	signal := l.Requests.Rate > 0 || l.Tokens.Rate > 0
	if hold > 0 {
		if extended, _ := part.extendGate(now, now.Add(hold)); extended {
			part.budget.CoolDown(context.WithoutCancel(req.Context()), now, now.Add(hold))
			signal = true
		}
	}
	if signal {
		part.signal()
	}
}

// headerRate returns the refill rate q implies, made exact despite counts
// rounded down: a refilling bucket that shows Remaining whole units out of
// Limit may hold nearly one more, so one answer only bounds the rate,
// between (Limit-Remaining-1)/Reset and (Limit-Remaining)/Reset. The pacer
// intersects the bounds of successive answers, which close in on the true
// rate, and uses the upper one where Reset is exact. The bucket's sync to
// Remaining absorbs what error is left.
func (part *partition) headerRate(now time.Time, q *quota) float64 {
	r := q.refillRate()
	if !q.Refill && q.Window == 0 && q.Remaining > 0 && q.Reset > 0 {
		// A window with no stated length: what is left must last until
		// the reset, so spread it evenly over the time to the reset.
		return float64(q.Remaining) / q.Reset.Seconds()
	}
	if !q.Refill || q.Window > 0 || q.Limit <= 0 || q.Remaining < 0 || q.Reset <= 0 {
		return r
	}
	n := q.Limit - q.Remaining
	if n < 1 {
		return 0 // a full bucket tells nothing of the rate
	}
	// Reset may be rounded up to whole seconds (every dialect but
	// OpenAI's durations): then the refill may take up to 1s less.
	gran := time.Second
	if q.Source == "openai" {
		gran = 0
	}
	lo, hi := float64(n-1)/q.Reset.Seconds(), math.Inf(1)
	if q.Reset > gran {
		hi = float64(n) / (q.Reset - gran).Seconds()
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	i := 0
	if q.Name != "requests" {
		i = 1
	}
	b := &part.hdr[i]
	if now.Sub(b.at) > headerTrust || lo > b.hi || hi < b.lo {
		// Stale, or the rate changed: start over.
		*b = rateBounds{lo: lo, hi: hi, at: now}
	}
	b.lo, b.hi = max(b.lo, lo), min(b.hi, hi)
	if gran > 0 || math.IsInf(b.hi, 1) {
		return b.lo // a loose upper bound: stay on the safe side
	}
	// The upper bound, which is (Limit-Remaining)/Reset as the server
	// states it: the lower one is far off while the pacer keeps the bucket
	// nearly full (one unit short gives 0), and would hold the pacer at a
	// fraction of the rate for good. A rate a little high is caught by the
	// sync to Remaining, which holds the pacer at the server's count.
	return b.hi
}

// rateBounds is the interval a refilling bucket's rate must lie in, given
// every header seen since at.
type rateBounds struct {
	lo, hi float64
	at     time.Time
}

// Share: the part of a header-stated limit this partition takes.
//
// Headers state the limit of the key, and every client that uses the key
// reads the same numbers. Clients that do not share a pacer (other
// processes, other Transports) would each send at the full rate; the 429s
// they meet despite the headers are the sign. Each new cool-down while
// headers are trusted halves the partition's share of the stated rate,
// burst and remaining count (never below a sixteenth), once the headers
// have been trusted for a second; every second without one gives back a
// twentieth of the full rate. The clients' shares then settle near their
// fair part, as TCP's do. A single client sees no 429 once it paces by the
// headers, so its share stays whole. With WithLimiter the budget is the
// Limiter's, shared by design, and the share stays whole too.
const (
	minShare     = 1.0 / 16
	shareRecover = 0.05 // of the full rate, per second without a cool-down
	shareGrace   = time.Second
)

// shareAt returns the partition's share at now, recovering it for the
// time since its last change.
func (part *partition) shareAt(now time.Time) float64 {
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.share < 1 {
		if steps := math.Floor(now.Sub(part.shareChanged).Seconds()); steps >= 1 {
			part.share = min(1, part.share+shareRecover*steps)
			// Keep the part of a second not yet counted.
			part.shareChanged = part.shareChanged.Add(time.Duration(steps) * time.Second)
		}
	}
	return part.share
}

// cutShare halves the share after a cool-down met while headers are
// trusted: the limit they state is shared with other clients.
func (part *partition) cutShare(now time.Time) {
	part.mu.Lock()
	defer part.mu.Unlock()
	if !part.est.trusted(now) {
		return
	}
	if now.Sub(part.headersSince) < shareGrace {
		// Answers that were in flight when the first headers arrived
		// can meet a 429 even when this client is alone on the key.
		return
	}
	part.share = max(part.share/2, minShare)
	part.shareChanged = now
}

// firmPart returns the part of a budget wait that is certain: all of it
// when the rate was stated, by the caller (WithRate) or by the server's
// headers; otherwise only what is left of the cool-down gate. A rate the
// estimator is still probing or has inferred from throttles is provisional:
// it rises as the estimator learns, and the waiters then reserve again, so a
// long wait computed from it must not fail a request before its deadline.
func (part *partition) firmPart(now time.Time, wait time.Duration) time.Duration {
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.est.stated || part.est.trusted(now) {
		return wait
	}
	return min(max(part.gate.Sub(now), 0), wait)
}

// extendGate records that the partition's gate closes until until, and
// reports whether that is later than it was: only then is the budget told,
// and the waiters woken.
//
// closed reports whether the gate was open at now: a burst of 429s answered
// together extends one cool-down by a few milliseconds each, and hooks hear
// of the cool-down once, not once per 429.
func (part *partition) extendGate(now, until time.Time) (extended, closed bool) {
	part.mu.Lock()
	defer part.mu.Unlock()
	if !until.After(part.gate) {
		return false, false
	}
	closed = !part.gate.After(now)
	part.gate = until
	return true, closed
}

// headroom returns the burst the pacer allows itself for a server burst
// of b: a tenth less, at least one less from 2 up. Pacing at exactly the
// server's rate leaves its bucket empty, so that any scheduling delay that
// bunches sends together would meet a 429; the reserve absorbs that, at the
// cost of a few requests' time once.
func headroom(b int) int {
	if b < 2 {
		return max(b, 1)
	}
	return b - max(1, b/10)
}

// material reports whether moving a rate last set to *last to r is worth
// voiding the waiters' reservations, and if so records r in *last.
// part.mu must be held.
func material(last *float64, r float64) bool {
	if r <= 0 || (*last > 0 && near(r, *last, materialChange)) {
		return false
	}
	*last = r
	return true
}

// hasRateLimitHeaders is a cheap test that spares responses without any
// rate-limit header the cost of parsing: every dialect's header names
// contain "Ratelimit" in canonical form.
func hasRateLimitHeaders(h http.Header) bool {
	for k := range h {
		if strings.Contains(k, "Ratelimit") {
			return true
		}
	}
	return false
}

// releaseBody frees the partition's concurrency slot when the response body
// is closed: a request occupies the server until its answer is read.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
