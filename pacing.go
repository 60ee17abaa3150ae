package pacehttp

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"
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
		once.Do(func() { ps = newPartitions(c.pace.expiry, c.pace.maxPartitions, c.pace.secret) })
		lim := c.pace.limiter
		if lim == nil {
			lim = localLimiter{}
		}
		return &pacer{cfg: c, next: next, parts: ps, limiter: lim}
	}
}

// A pacer is the pacing RoundTripper. Every request waits its turn in its
// partition (see partition), is sent, and its answer teaches the partition
// (learn.go).
type pacer struct {
	cfg     *config
	next    http.RoundTripper
	parts   *partitions
	limiter Limiter
	now     func() time.Time // nil: the real clock (see clock)
}

// clock returns the time now.
func (p *pacer) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// clockAfter returns the time now, known to be no earlier than t. On the
// real clock it is t advanced by the monotonic time elapsed since, which
// costs half a reading of the wall clock too: the answer path, which
// measures from the request's send time, reads it so. A step of the wall
// clock meanwhile is seen from the next request on.
func (p *pacer) clockAfter(t time.Time) time.Time {
	if p.now != nil {
		return p.now()
	}
	return t.Add(time.Since(t))
}

// A ticket is what the pacer remembers of a request between sending it and
// reading its answer.
type ticket struct {
	sent      time.Time
	burstFrom int64 // its send burst (see sendSpread): when the first left
	burstBase int32 // and how many were out before it
	inFlight  int32 // requests out when it left, itself included
	// The partition's sentRequests, sentTokens, joinedRequests and
	// joinedTokens once it had left.
	sentRequests, sentTokens     uint32
	joinedRequests, joinedTokens uint32
	probe                        bool // it left as the gate's probe
	tracked                      bool // its slot is held until its body is closed
}

func (p *pacer) newPartition(name string, now time.Time) *partition {
	pc := &p.cfg.pace
	part := &partition{
		name:   name,
		budget: p.limiter.Budget(name),
		wake:   make(chan struct{}, 1),
		slots:  pc.concurrency,
		learn:  newLearner(now, pc.floor, pc.rate, pc.burst),
		// The first burst begins with the partition.
		quotaWindow: quotaWindow{anchor: now.UnixNano(), cold: true},
		sentRate:    math.Inf(1),
		share:       1,
	}
	part.watcher, _ = part.budget.(Watcher)
	if pc.rate > 0 {
		part.sentRate, part.sentBurst = pc.rate, headroom(pc.burst)
	}
	if pc.tokenRate > 0 {
		part.tokens.Store(true)
		part.tokensStated = true
		part.learn.window = 0 // the caller stated a limit: no cold start
	}
	return part
}

// statedLimits returns the limits the caller stated (WithRate,
// WithTokenRate), or zero Limits.
func (pc *paceConfig) statedLimits() Limits {
	var l Limits
	if pc.rate > 0 {
		l.Requests = BucketLimits{Rate: pc.rate, Burst: headroom(pc.burst), Remaining: -1}
	}
	if pc.tokenRate > 0 {
		l.Tokens = BucketLimits{Rate: pc.tokenRate, Burst: headroom(pc.tokenBurst), Remaining: -1}
	}
	if l != (Limits{}) {
		l.Source = LimitsStated
	}
	return l
}

// setUp gives the budget the limits the caller stated, once, before any
// request of the partition reserves, outside the partitions' lock: a shared
// Limiter may need a round trip to its store.
func (p *pacer) setUp(part *partition, now time.Time) {
	part.setUp.Do(func() {
		if l := p.cfg.pace.statedLimits(); l != (Limits{}) {
			part.budget.SetLimits(context.Background(), now, l)
		}
	})
}

// RoundTrip implements http.RoundTripper.
func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, unsent(req, ErrNilURL)
	}
	return p.roundTrip(req, 0, nil)
}

// roundTrip sends req, attempt number attempt of its request (0 when the
// pacer is not under the retry layer, which numbers them). When it leaves,
// hooks hear of the attempt; the pacer's own events carry its number. The
// retry layer passes in, which roundTrip sets to req's partition, so that
// the request's retries draw on that partition's budget.
func (p *pacer) roundTrip(req *http.Request, attempt int, in **partition) (*http.Response, error) {
	now := p.clock()
	body := bodyPeek{req: req}
	host, cred, model := partitionKey(req, p.cfg.pace.keyFunc, !p.cfg.pace.sameModel, &body)
	part := p.parts.get(host, cred, model, now, func(name string) *partition { return p.newPartition(name, now) })
	if in != nil {
		*in = part
	}
	defer part.active.Add(-1)
	p.setUp(part, now)

	tokens := 0
	if part.tokens.Load() {
		if p.cfg.pace.costFunc != nil {
			tokens = max(p.cfg.pace.costFunc(req), 1)
		} else {
			tokens = defaultCost(req, &body, !part.inputOnly.Load())
		}
	}
	body.release()
	t, err := p.admit(req, part, now, tokens, attempt)
	if err != nil {
		return nil, unsent(req, err)
	}
	if attempt > 0 {
		p.cfg.emit(Event{Kind: EventAttempt, Request: req, Attempt: attempt, Partition: part.name})
	}
	attemptSent(req)
	resp, err := p.next.RoundTrip(req)
	p.answered(part, req, t, resp, err, attempt)
	if t.tracked {
		if err != nil || resp == nil || resp.Body == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			// A 101's body is the connection itself, an io.ReadWriter
			// that net/http hands over: a wrapper would hide its Write.
			part.release()
		} else {
			part.active.Add(1) // the body holds the partition until closed
			resp.Body = &releaseBody{ReadCloser: resp.Body, part: part}
		}
	}
	return resp, err
}

// unsent closes the request body, as the RoundTripper contract asks of a
// transport that returns without sending, and returns err.
func unsent(req *http.Request, err error) error {
	if req.Body != nil {
		req.Body.Close()
	}
	return err
}

// admit waits for req's turn in part and returns its ticket, or the reason it
// may not go: its context ended, the wait would outlast its deadline or the
// maximum wait, or the Limiter failed.
func (p *pacer) admit(req *http.Request, part *partition, now time.Time, tokens, attempt int) (ticket, error) {
	start := now
	part.mu.Lock()
	if part.head || len(part.queue) > 0 {
		if err := p.waitTurn(req.Context(), req.Cancel, part, now); err != nil {
			return ticket{}, err // mu released
		}
		now = p.clock()
	} else {
		part.head = true
	}
	// The head of the line, with mu held.
	for {
		if err := p.awaitGateAndRoom(req, part, &now, attempt); err != nil {
			part.passHead()
			part.mu.Unlock()
			return ticket{}, err
		}
		var cancel func()
		if lb, ok := part.budget.(*localBudget); !ok || !lb.take(now, 1, tokens) {
			// Not on hand, or the budget may block: reserve without mu.
			part.mu.Unlock()
			var again bool
			var err error
			cancel, again, err = p.reserve(req, part, &now, tokens)
			part.mu.Lock()
			part.waitingOn = waitNothing
			part.hearFleet(now)
			if err != nil {
				part.passHead()
				part.mu.Unlock()
				return ticket{}, err
			}
			if again {
				continue
			}
		}
		wait, probe := part.gate.wait(now)
		if wait > 0 {
			// The gate closed while the head slept: the reservation is void.
			// The budget is called without mu (a Limiter may be remote);
			// the head stays this request's meanwhile.
			if cancel != nil {
				part.mu.Unlock()
				cancel()
				part.mu.Lock()
			}
			continue
		}
		if probe {
			part.gate.sendProbe(now)
		}
		part.inFlight++
		part.learn.left(now)
		t := ticket{sent: now, inFlight: int32(min(part.inFlight, math.MaxInt32)), probe: probe, tracked: part.tracksBodies()}
		t.burstFrom, t.burstBase = part.sent(now)
		part.countSent(&t, tokens)
		part.passHead()
		part.mu.Unlock()
		if now.After(start) {
			p.cfg.emit(Event{Kind: EventPaced, Request: req, Attempt: attempt, Wait: now.Sub(start), Partition: part.name})
		}
		return t, nil
	}
}

// awaitGateAndRoom holds the head of part's line until the gate lets it out
// (open, or as its probe) and there is room under the in-flight limit, and
// gives the budget the learner's rate on the way. *now is kept current. mu
// is held on entry and on return.
func (p *pacer) awaitGateAndRoom(req *http.Request, part *partition, now *time.Time, attempt int) error {
	ctx := req.Context()
	for {
		if _, local := part.budget.(*localBudget); !local {
			part.hearFleet(*now) // a budget in process memory has no fleet
		}
		part.learn.advance(*now)
		if limits, update := part.rateUpdate(*now); update {
			part.mu.Unlock()
			part.budget.SetLimits(context.WithoutCancel(ctx), *now, limits)
			p.reportRate(req, part, attempt, limits.Requests.Rate)
			part.mu.Lock()
		}
		wait, _ := part.gate.wait(*now)
		part.waitingOn = waitGate
		if w := part.window(); wait == 0 && w > 0 && part.inFlight >= w {
			wait, part.waitingOn = part.windowWait(*now), waitRoom
		}
		if wait == 0 {
			wait = part.quotaWindow.wait(*now, &part.learn.sends)
		}
		if wait == 0 {
			wait = part.coldSpacing(*now)
		}
		if wait <= 0 {
			part.waitingOn = waitNothing
			return nil
		}
		err := p.tooLong(ctx, part, *now, part.gate.certain(*now))
		part.mu.Unlock()
		if err == nil {
			_, err = p.sleep(ctx, req.Cancel, wait, part, nil)
		}
		part.mu.Lock()
		part.waitingOn = waitNothing
		if err != nil {
			return err
		}
		*now = p.clock()
	}
}

// reserve takes the head's units from part's budget and waits until they
// are due. again reports that the head was woken before (by news of the
// gate, or of a change elsewhere in a shared budget) and must look again;
// its reservation is then handed back. cancel hands back the reservation
// kept. *now is kept current. mu is not held.
func (p *pacer) reserve(req *http.Request, part *partition, now *time.Time, tokens int) (cancel func(), again bool, err error) {
	ctx := req.Context()
	wait, cancel, err := part.budget.Reserve(ctx, *now, 1, tokens)
	if err != nil {
		return nil, false, &limiterError{partition: part.name, err: err}
	}
	if wait <= 0 {
		return cancel, false, nil
	}
	part.mu.Lock()
	part.learn.bound(now.Add(wait))
	part.waitingOn = waitBudget
	part.mu.Unlock()
	if err = p.tooLong(ctx, part, *now, part.certainWait(*now, wait)); err == nil {
		again, err = p.sleep(ctx, req.Cancel, wait, part, part.watcher)
	}
	if (again || err != nil) && cancel != nil {
		cancel()
		cancel = nil
	}
	*now = p.clock()
	return cancel, again && err == nil, err
}

// waitTurn queues the caller behind the head and returns once it is the
// head, with mu held; or, with mu released, the reason it gave up. mu must
// be held on entry.
func (p *pacer) waitTurn(ctx context.Context, stop <-chan struct{}, part *partition, now time.Time) error {
	// A wait certain to outlast the deadline fails now: the gate's, and,
	// under a rate the caller or the server stated, the time the requests
	// ahead will take.
	certain := part.gate.certain(now)
	if r := part.sentRate; part.learn.phase == fixed || part.learn.trusted(now) {
		if r > 0 && !math.IsInf(r, 1) {
			ahead := len(part.queue) + 1 - part.sentBurst
			certain += time.Duration(float64(max(ahead, 0)) / r * float64(time.Second))
		}
	}
	if err := p.tooLong(ctx, part, now, certain); err != nil {
		part.mu.Unlock()
		return err
	}
	w := &waiter{ready: make(chan struct{})}
	part.queue = append(part.queue, w)
	part.mu.Unlock()
	select {
	case <-w.ready:
		part.mu.Lock()
		return nil
	case <-ctx.Done():
		part.mu.Lock()
		part.leave(w)
		part.mu.Unlock()
		return ctx.Err()
	case <-stop:
		part.mu.Lock()
		part.leave(w)
		part.mu.Unlock()
		return errRequestCanceled
	}
}

// windowWait returns how long the head waits for room under the in-flight
// limit before it looks again by itself (an answer wakes it sooner): the
// learner widens the window by the clock too. mu must be held.
func (part *partition) windowWait(now time.Time) time.Duration {
	if part.learn.window == 0 || part.slots > 0 && part.slots <= part.learn.window {
		return time.Hour // the caller's cap: only an answer makes room
	}
	hold := coldWindowGrowth
	switch {
	case part.learn.capped && !part.learn.sure:
		hold = tentativeGrowth
	case part.learn.capped:
		hold = part.learn.windowHold
	}
	return max(part.learn.windowAt.Add(hold).Sub(now), time.Millisecond)
}

// coldSpacing returns how long the head waits at now so that the cold
// start's sends leave spread over the round trip, at twice the window per
// round trip, rather than together: the answers of one round come back
// together and each lets two requests out, and when a burst of them
// outgrows the server's bucket or quota, all have left before the first
// refusal is heard (a window of 100 met 27 refusals over a 1ms network).
// Spread, a refusal is heard after as many sends as leave in its round
// trip, which is short, since a refusal takes no service time. As in TCP's
// paced slow start, the window still doubles every round trip. mu must be
// held.
func (part *partition) coldSpacing(now time.Time) time.Duration {
	l := &part.learn
	if !l.coldEnd.IsZero() || l.window <= 0 || part.coldRTT <= 0 {
		return 0
	}
	if part.burstCount < coldBurst || now.UnixNano()-part.burstFrom > int64(sendSpread) {
		return 0
	}
	// The burst under way is full: the next leaves once the round trip
	// has room for it at twice the delivery rate.
	gap := part.coldRTT * coldBurst / time.Duration(2*max(part.inFlight, 1))
	return max(time.Unix(0, part.burstFrom).Add(gap).Sub(now), 0)
}

// coldBurst is how many requests of the cold start may leave together: as
// many as a concurrency cap's first refusals are read from (see capRefusal),
// so that spreading the larger rounds leaves the learner's reading of small
// ones as it was.
const coldBurst = 2 * minCap

// certainWait returns the part of a budget wait that is certain: all of it
// when the rate was stated, by the caller (WithRate) or by the server's
// headers; otherwise none, since a learned rate is provisional (it rises as
// the pacer learns, and the head reserves again), so a long wait computed
// from it must not fail a request before its deadline.
func (part *partition) certainWait(now time.Time, wait time.Duration) time.Duration {
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.learn.phase == fixed || part.learn.trusted(now) || part.tokensStated {
		return wait
	}
	return 0
}

// tooLong returns a *WaitError if a wait of certain at now would outlast the
// maximum wait or ctx's deadline.
func (p *pacer) tooLong(ctx context.Context, part *partition, now time.Time, certain time.Duration) error {
	if certain <= 0 {
		return nil
	}
	if mw := p.cfg.maxWait; mw > 0 && certain > mw {
		return &WaitError{Wait: certain, Limit: mw, Partition: part.name}
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(certain).After(dl) {
		return &WaitError{Wait: certain, Limit: max(dl.Sub(now), 0), Deadline: true, Partition: part.name}
	}
	return nil
}

// sleep waits d, or until the partition's head is woken or the remote
// budget changes (woken), or ctx ends or stop (the request's deprecated
// Cancel channel, nil if unset) closes. A wait longer than the maximum wait
// is cut to it: by then something will have changed, and the head looks
// again.
func (p *pacer) sleep(ctx context.Context, stop <-chan struct{}, d time.Duration, part *partition, remote Watcher) (woken bool, err error) {
	cut := false
	if mw := p.cfg.maxWait; mw > 0 && d > mw {
		d, cut = mw, true
	}
	var changed <-chan struct{}
	if remote != nil {
		changed = remote.Changed()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return cut, nil
	case <-part.wake:
		return true, nil
	case <-changed:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-stop:
		return false, errRequestCanceled
	}
}

// release frees an in-flight slot and tells the head, if it waits for one.
func (part *partition) release() {
	part.mu.Lock()
	part.inFlight--
	wake := part.waitingOn == waitRoom
	part.mu.Unlock()
	if wake {
		part.signal()
	}
}

// reportedChange is how far the request rate moves, as a fraction, before
// hooks hear of it again, so that a log is not flooded.
const reportedChange = 0.1

// reportRate tells hooks of a new request rate, once it has moved by
// reportedChange since the last report.
func (p *pacer) reportRate(req *http.Request, part *partition, attempt int, r float64) {
	if r <= 0 || p.cfg.hook == nil {
		return
	}
	if prev := math.Float64frombits(part.reported.Load()); !near(r, prev, reportedChange) {
		part.reported.Store(math.Float64bits(r))
		p.cfg.emit(Event{Kind: EventRateChange, Request: req, Attempt: attempt, Rate: r, Partition: part.name})
	}
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

// releaseBody frees the partition's in-flight slot when the response body
// is closed: a request occupies the server until its answer is read.
type releaseBody struct {
	io.ReadCloser
	once sync.Once
	part *partition
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.part.release()
		b.part.active.Add(-1)
	})
	return err
}
