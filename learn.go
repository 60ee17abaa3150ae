package pacehttp

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Backoffs of the gate when a refusal carries no hint of how long to wait.
const (
	// minHintlessWait is the shortest: a refusal without a hint closes the
	// gate at least this long, doubled for each refused probe.
	minHintlessWait = 10 * time.Millisecond
	// overloadWait is the first backoff after an overloaded answer (503,
	// 529) without a hint, doubled for each refused probe.
	overloadWait = 50 * time.Millisecond
	// maxHintlessWait bounds the first; maxOverloadWait the second, lower:
	// an overloaded server is probed by one request at a time, which
	// costs it little, and it may be back any moment.
	maxHintlessWait = 10 * time.Second
	maxOverloadWait = 250 * time.Millisecond

	// overloadRun is how many overloaded answers in a row (503, 529
	// without a hint) close the gate: fewer are the server's passing
	// trouble, which the retry layer's repeats ride out.
	overloadRun = 3
)

// answered teaches part what the answer to a request sent with ticket t says
// about the server's limits, and frees the request's in-flight slot unless
// its body holds it.
func (p *pacer) answered(part *partition, req *http.Request, t ticket, resp *http.Response, err error, attempt int) {
	now := p.clockAfter(t.sent)
	if err != nil || resp == nil {
		part.mu.Lock()
		if !t.tracked {
			part.inFlight--
		}
		if t.probe {
			part.gate.probeOut = false // unanswered: another may go
		}
		part.learn.unanswered(t.sent)
		wake := part.waitingOn != waitBudget
		part.mu.Unlock()
		if wake {
			part.signal()
		}
		return
	}
	h := resp.Header
	code := resp.StatusCode
	if hasRateLimitHeaders(h) {
		if qs, _ := parseQuotas(h, now); len(qs) > 0 {
			p.applyQuotas(part, req, t, attempt, now, qs)
		}
	}
	var hint Hint
	var hinted bool
	throttled := code == http.StatusTooManyRequests
	overloaded := code == http.StatusServiceUnavailable || code == StatusOverloaded
	if throttled || overloaded || code == http.StatusForbidden {
		hint, hinted, _ = retryHint(h, now)
		// GitHub's secondary limits answer 403 with a hint.
		throttled = throttled || code == http.StatusForbidden && hinted
	}

	part.mu.Lock()
	if !t.tracked {
		part.inFlight--
	}
	if overloaded {
		part.overloads++
	} else {
		part.overloads = 0
	}
	if !throttled && !overloaded {
		if d := now.Sub(t.sent); part.learn.coldEnd.IsZero() && (part.coldRTT == 0 || d < part.coldRTT) {
			part.coldRTT = d
		}
		part.learn.accepted(now, t.sent, part.successLevel(t))
		closedAt := part.gate.closedAt
		opened := part.gate.served(now, t.sent, t.probe)
		if opened {
			part.learn.reopened(now, now.Sub(closedAt))
			part.quotaWindow.opened(t.sent, &part.learn.sends)
		} else if part.gate.closed {
			// The estimate of the refill time the first probe waits for
			// may have improved.
			if r := part.refillRate(now); r > 0 && !math.IsInf(r, 1) {
				opened = part.gate.hasten(closedAt.Add(max(time.Duration(float64(time.Second)/r), minHintlessWait)))
			}
		}
		wake := opened && part.waitingOn != waitNothing || !t.tracked && part.waitingOn == waitRoom
		part.mu.Unlock()
		if wake {
			part.signal()
		}
		return
	}

	var why refusal
	if !throttled {
		part.learn.unanswered(t.sent)
		if !hinted && !t.probe && !part.gate.closed && part.overloads < overloadRun {
			// Overloaded now and then: the retry layer repeats the
			// request; the server is not down.
			part.mu.Unlock()
			return
		}
	}
	report := false
	if throttled {
		why = part.learn.refused(now, t.sent, part.refusalLevel(t), t.probe)
		report = !why.concurrency && part.learn.refusedAt.Equal(t.sent) && !part.learn.trusted(now) // news to the fleet
	}
	if why.concurrency && !hinted {
		// The in-flight limit holds the others; the refused request
		// waits for room like any other.
		wake := part.waitingOn == waitRoom
		part.mu.Unlock()
		if wake {
			part.signal()
		}
		return
	}
	refill := time.Duration(0)
	if r := part.refillRate(now); r > 0 && !math.IsInf(r, 1) {
		refill = time.Duration(float64(time.Second) / r)
	}
	var ceiling time.Duration
	switch {
	case hinted:
		ceiling = hint.Wait
	case throttled:
		ceiling = min(max(refill, minHintlessWait)<<min(part.gate.failed, 20), maxHintlessWait)
	default:
		ceiling = min(overloadWait<<min(part.gate.failed, 20), maxOverloadWait)
	}
	early := max(refill, minHintlessWait)
	if overloaded || hinted && !roundedUp(hint) || why.spent {
		early = ceiling
	}
	closed := part.gate.shut(now, t.sent, t.probe, ceiling, early)
	if closed {
		part.learn.closed()
	}
	if at := part.quotaWindow.refused(t.sent, part.gate.closedAt, part.gate.until, t.probe, &part.learn.sends); !at.IsZero() {
		part.gate.reprobe(at)
	} else if t.probe && early < ceiling && part.learn.limit > 0 && !part.learn.trusted(now) {
		// The early probe of a rounded-up hint refused by a server that
		// has been serving this partition: its bucket refills, but
		// others that share the key took what came back. Idling the
		// whole second would hand them this partition's part too (a
		// client of four on one key fell to a twelfth of the limit), so
		// the next probe backs off from the refill time, doubling. A
		// server that served nothing is probed once per ceiling still,
		// and one whose headers state the limit is shared by cutShare.
		part.gate.reprobe(now.Add(early << min(part.gate.failed, 20)))
	}
	probeAt := part.gate.probeAt
	cut := closed && throttled && part.learn.trusted(now) && p.cfg.pace.limiter == nil
	limits, update := part.rateUpdate(now)
	part.mu.Unlock()

	ctx := context.WithoutCancel(req.Context())
	if report {
		part.reportRefusal(ctx, now, t.sent)
	}
	if update {
		// The new rate first, so that the budget refills at it from the
		// cool-down on.
		part.budget.SetLimits(ctx, now, limits)
		p.reportRate(req, part, attempt, limits.Requests.Rate)
	}
	if closed {
		part.budget.CoolDown(ctx, now, probeAt)
		if cut {
			// A Limiter of the caller's (Redis, say) already holds one
			// budget for all its clients.
			part.cutShare(now)
		}
		p.cfg.emit(Event{Kind: EventCoolDown, Request: req, Attempt: attempt, Reason: fmt.Sprintf("status %d", code),
			Wait: hint.Wait, StatusCode: code, Partition: part.name})
	}
	part.signal()
}

// gateRefuses returns the WaitError the pacer would give a request of ctx
// that met part's gate now, if the gate's wait is certain to outlast its
// deadline or the max wait.
func (p *pacer) gateRefuses(ctx context.Context, part *partition) error {
	if part == nil {
		return nil
	}
	now := p.clock()
	part.mu.Lock()
	certain := part.gate.certain(now)
	part.mu.Unlock()
	return p.tooLong(ctx, part, now, certain)
}

// hold keeps part's gate, if a refusal closed it, shut for d from now: a
// wait the retry layer read where the pacer does not (see gate.hold).
func (p *pacer) hold(part *partition, d time.Duration) {
	if part == nil {
		return
	}
	now := p.clock()
	part.mu.Lock()
	part.gate.hold(now, d)
	part.mu.Unlock()
}

// roundedUp reports whether a rate limit's hint is a whole second rounded
// up from less: a Retry-After of 1, or a reset cut to the second that is a
// second away. A bucket that refills in milliseconds can only say that
// much, so the gate's first probe goes once the refill time has passed. A
// longer wait, or one stated in milliseconds, is meant: the probe waits for
// all of it, so that a server that holds its callers out for a while (a
// penalty box, a quota spent for the minute) is not probed into holding
// them longer. An overloaded server's wait is always meant.
func roundedUp(h Hint) bool {
	switch h.Source {
	case "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "google.rpc.RetryInfo":
		return false
	}
	return h.Wait <= time.Second
}

// applyQuotas sets the partition's buckets from what the server reports,
// and holds the partition when a quota is spent until its next unit.
func (p *pacer) applyQuotas(part *partition, req *http.Request, t ticket, attempt int, now time.Time, qs []quota) {
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
	part.mu.Lock()
	part.growShare(now, reqQ)
	share := part.shareAt(now)
	// Sent since t, less those joined to a burst under way (see countSent).
	requestsSince := int64((part.sentRequests - t.sentRequests) - (part.joinedRequests - t.joinedRequests))
	tokensSince := int64((part.sentTokens - t.sentTokens) - (part.joinedTokens - t.joinedTokens))
	part.mu.Unlock()
	precise := true
	bucket := func(q *quota, spentSince int64) BucketLimits {
		r, exact := part.headerRate(now, q)
		if q == reqQ {
			precise = exact
		}
		bl := BucketLimits{Rate: r * share, Remaining: q.Remaining}
		if q.Limit > 0 {
			bl.Burst = headroom(int(max(float64(min(q.Limit, math.MaxInt32))*share, 1)))
		}
		if q.Remaining > 0 {
			bl.Remaining = max(int64(float64(q.Remaining)*share)-spentSince, 0)
		}
		if !q.Refill || bl.Rate <= 0 {
			// A refilling bucket synced to Remaining holds requests
			// by itself; a window's quota returns only at its reset.
			hold = max(hold, q.nextUnit())
		}
		return bl
	}
	if reqQ != nil {
		l.Requests = bucket(reqQ, requestsSince)
		part.mu.Lock()
		if precise {
			part.learn.fromHeaders(now, l.Requests.Rate, reqQ.Limit)
			if l.Requests.Rate > 0 {
				part.sentRate, part.sentRateAt = l.Requests.Rate, now
			}
			if l.Requests.Burst > 0 {
				part.sentBurst = l.Requests.Burst
			}
		} else {
			// The learner sets the rate; the headers tell it the burst,
			// and an empty bucket as surely as a refusal would.
			part.learn.informed(now, l.Requests.Rate, reqQ.Limit, reqQ.Reset)
			if reqQ.Remaining == 0 {
				part.learn.drained(now, t.sent)
			}
			l.Requests.Rate = 0 // the learner's, set by the head
			if l.Requests.Burst > 0 {
				part.sentBurst = l.Requests.Burst
			}
		}
		part.mu.Unlock()
	} else {
		l.Requests.Remaining = -1
	}
	if tokQ != nil {
		// Anthropic's input-token limit counts the prompt only; a token
		// limit that counts the completion too reserves its maximum.
		part.inputOnly.Store(tokQ.Name == "input-tokens")
		l.Tokens = bucket(tokQ, tokensSince)
		if l.Tokens.Rate > 0 {
			part.tokens.Store(true)
			part.mu.Lock()
			part.learn.window = 0 // a stated limit: no cold start
			part.mu.Unlock()
		}
	} else {
		l.Tokens.Remaining = -1
	}
	part.budget.SetLimits(context.WithoutCancel(req.Context()), now, l)
	if l.Requests.Rate > 0 {
		p.reportRate(req, part, attempt, l.Requests.Rate)
	}
	if hold > 0 {
		part.budget.CoolDown(context.WithoutCancel(req.Context()), now, now.Add(hold))
		part.signal() // a head that holds a reservation reserves again
	}
}

// headerRate returns the refill rate q implies, made exact despite counts
// rounded down: a refilling bucket that shows Remaining whole units out of
// Limit may hold nearly one more, so one answer only bounds the rate,
// between (Limit-Remaining-1)/Reset and (Limit-Remaining)/Reset. The pacer
// intersects the bounds of successive answers, which close in on the true
// rate, and uses the upper one where Reset is exact. The bucket's sync to
// Remaining absorbs what error is left.
//
// It also reports whether the rate is precise enough to pace by: a reset
// rounded to whole seconds leaves a refilling bucket's rate loose until the
// bounds close in (a bucket that refills in a few hundred milliseconds
// shows a reset of "1s" whatever its rate), and then the learner finds the
// rate while the headers still state the burst and what is left.
func (part *partition) headerRate(now time.Time, q *quota) (rate float64, precise bool) {
	r := q.refillRate()
	// Reset may be rounded up to whole seconds (every dialect but
	// OpenAI's durations): then the refill may take up to 1s less.
	gran := time.Second
	if q.Source == "openai" {
		gran = 0
	}
	if !q.Refill && q.Window == 0 && q.Reset > 0 {
		if q.Reset < coarseReset*gran && q.Limit > 0 {
			// A window with no stated length whose reset, rounded to
			// the second, is near: the second decides what is left
			// over the time to the reset (4 left 0.98s before it is
			// 4/s, 0.02s before, 200/s), a rate that swung with every
			// answer. The whole quota over the time to the reset, at
			// least a second, is the rate of a window that short:
			// what is left goes sooner, the sync to Remaining keeping
			// the count, and at 0 the hold waits for the reset.
			return float64(q.Limit) / max(q.Reset, gran).Seconds(), true
		}
		if q.Remaining > 0 {
			// A window with no stated length: what is left must last
			// until the reset, so spread it evenly over the time to it.
			return float64(q.Remaining) / q.Reset.Seconds(), true
		}
	}
	if !q.Refill || q.Window > 0 || q.Limit <= 0 || q.Remaining < 0 || q.Reset <= 0 {
		return r, true
	}
	n := q.Limit - q.Remaining
	if n < 1 {
		return 0, true // a full bucket tells nothing of the rate
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
	if now.UnixNano()-b.at > int64(headerTrust) || lo > b.hi || hi < b.lo {
		// Stale, or the rate changed: start over.
		*b = rateBounds{lo: lo, hi: hi, at: now.UnixNano()}
	}
	b.lo, b.hi = max(b.lo, lo), min(b.hi, hi)
	if gran > 0 || math.IsInf(b.hi, 1) {
		// Stay on the safe side: the lower bound, precise once the
		// bounds are within a tenth of each other.
		return b.lo, b.lo > 0 && b.hi <= b.lo*1.1
	}
	// The upper bound, which is (Limit-Remaining)/Reset as the server
	// states it: the lower one is far off while the pacer keeps the bucket
	// nearly full (one unit short gives 0), and would hold the pacer at a
	// fraction of the rate for good. A rate a little high is caught by the
	// sync to Remaining, which holds the pacer at the server's count.
	return b.hi, true
}

// coarseReset: a reset rounded to the granularity of its header is taken
// for a window's rate only this many granules away or more, where the
// rounding changes the rate by less than a tenth.
const coarseReset = 11

// rateBounds is the interval a refilling bucket's rate must lie in, given
// every header seen since at. at is in unix nanoseconds, as the
// partition's other times: a time.Time is three times the size, and the
// partition fits its allocation size class with little to spare.
type rateBounds struct {
	lo, hi float64
	at     int64
}

// Share: the part of a header-stated limit this partition takes.
//
// Headers state the limit of the key, and every client that uses the key
// reads the same numbers. Clients that do not share a pacer (other
// processes, other Transports) would each send at the full rate; the 429s
// they meet despite the headers are the sign. Each new cool-down while
// headers are trusted halves the partition's share of the stated rate,
// burst and remaining count (never below a sixteenth), from the first
// cool-down on: the client that got in first paces at the whole stated rate
// and leaves nothing to the others' probes, and once its share was cut only
// after a second of trusted headers, it kept the key to itself for three.
// Every second without a cool-down gives back a twentieth of the full rate.
// The clients' shares then settle near their fair part, as TCP's do.
// Answers that show the key's bucket three quarters full or more show room
// that no client takes, most often because another has finished: the share
// grows by half every quarter second then, so that the clients left take
// the part of one that is done (cut to a quarter, they ran at a quarter of
// the limit for seconds, recovering a twentieth a second); a single client
// whose cold start met a 429 soon has its whole share back. A single client
// sees no 429 once it paces by the headers, so its share stays whole. With
// WithLimiter the budget is the Limiter's, shared by design, and the share
// stays whole too.
const (
	minShare     = 1.0 / 16
	shareRecover = 0.05 // of the full rate, per second without a cool-down

	shareGrowth    = 1.5
	shareGrowEvery = 250 * time.Millisecond
)

// shareAt returns the partition's share at now, recovering it for the
// time since its last change. mu must be held.
func (part *partition) shareAt(now time.Time) float64 {
	if part.share < 1 {
		if steps := math.Floor(now.Sub(part.shareChanged).Seconds()); steps >= 1 {
			part.share = min(1, part.share+shareRecover*steps)
			// Keep the part of a second not yet counted.
			part.shareChanged = part.shareChanged.Add(time.Duration(steps) * time.Second)
		}
	}
	return part.share
}

// growShare grows a share below the whole by shareGrowth, at most every
// shareGrowEvery, when q (the requests' quota, if any) shows the key's
// bucket three quarters full or more. mu must be held.
func (part *partition) growShare(now time.Time, q *quota) {
	if q == nil || q.Limit <= 0 || 4*q.Remaining < 3*q.Limit {
		return
	}
	if part.share < 1 && now.Sub(part.shareChanged) >= shareGrowEvery {
		part.share = min(1, part.share*shareGrowth)
		part.shareChanged = now
	}
}

// cutShare halves the share after a cool-down met while headers are
// trusted: the limit they state is shared with other clients.
func (part *partition) cutShare(now time.Time) {
	part.mu.Lock()
	defer part.mu.Unlock()
	part.share = max(part.share/2, minShare)
	part.shareChanged = now
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
