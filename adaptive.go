package pacehttp

import (
	"math"
	"time"
)

// Tuning of the learner; see learner.
const (
	// sendMargin is the share of the estimated server rate the pacer sends
	// at: room for the estimate's error and for sends bunched by scheduling.
	sendMargin = 0.97

	// searchDoubling is how fast the rate grows while the learner searches
	// for a limit it has no estimate of.
	searchDoubling = 150 * time.Millisecond

	// searchCount is how many requests a search sends, at least, before
	// its rate doubles.
	searchCount = 3

	// searchLead is added to the cold start's duration to set the rate a
	// search starts from: what the cold start got through, spread over its
	// length plus this lead, is a rate below the server's for any burst
	// and refill that could have produced it but the most lopsided.
	searchLead = 250 * time.Millisecond

	// minHold and maxHold bound how long an estimate is held before the
	// learner climbs past it to look for a raised limit. The hold doubles
	// after a climb that found nothing new, and is longer when refusals are
	// costly (a long Retry-After, a penalty box).
	minHold = time.Second
	maxHold = 2 * time.Second

	// holdRequests: a slow limit holds at least as long as this many
	// requests take, so that a climb's refusal is one in a good many
	// requests at any rate (a fiftieth at most, a third of what refusals
	// may cost in all).
	holdRequests = 50

	// maxQuietClimbs: each climb in a row that found no higher limit
	// doubles the requests a hold lasts, up to this many times.
	maxQuietClimbs = 3

	// climbGain shapes the climb past a held estimate: after x seconds the
	// rate is the estimate times 1 + climbGain·x², slow at first, where the
	// old limit most likely still is, then faster.
	climbGain = 0.2

	// climbSearch is how far above the estimate a climb may go without a
	// refusal before the learner takes the limit for gone and searches
	// again, doubling.
	climbSearch = 1.5

	// refusalCut is what a rate is multiplied by when the server refuses
	// at or below the estimate: the limit fell, or another client shares it.
	refusalCut = 0.8

	// slotWidth and slotCount shape the histogram of accepted sends the
	// learner keeps to measure rates over windows ending at a refusal.
	slotWidth = 20 * time.Millisecond
	slotCount = 128

	// minWindow is the shortest window a rate is measured over: a shorter
	// one magnifies the error of a count by one.
	minWindow = 50 * time.Millisecond

	// minEstimateCount is the fewest accepted sends a window must hold to
	// estimate a rate from: with fewer, a count off by one is a rate off
	// by a quarter.
	minEstimateCount = 8

	// fewSamples is the count of requests in the second before a refusal
	// under which the estimate is coarse.
	fewSamples = 20

	// edgeShare is the share of the rate a climb was refused at that the
	// learner takes for the limit when it has few requests to count.
	edgeShare = 0.95

	// coldWindowGrowth is how often the cold start's in-flight window
	// doubles while answers are slow to come: a slow first answer (a long
	// completion) must not hold the rest for long.
	coldWindowGrowth = 250 * time.Millisecond

	// maxColdWindow ends the cold start: a window this wide without a
	// refusal no longer protects anyone.
	maxColdWindow = 1024

	// minWindowHold is how long a learned in-flight limit holds before it
	// is raised by one to look for room; each refusal at the raised level
	// doubles the hold, up to maxWindowHold.
	minWindowHold = time.Second
	maxWindowHold = 16 * time.Second

	// minCap is the lowest in-flight level at which a refusal is taken for
	// a concurrency cap's: below it, refusals are a rate's (no API caps
	// concurrency that low, and at one or two requests in flight the two
	// cannot be told apart).
	minCap = 4

	// costlySlowdown is how many times slower the learner searches and
	// climbs when refusals cost a second or more each, and costlyHold how
	// many times that cost it holds an estimate before climbing.
	costlySlowdown = 4
	costlyHold     = 4

	// longClosure is how long the gate must have stayed closed for the
	// delivery rate not to be measured across it: a short one (a probe
	// after the refill time) leaves a unit or two unused at most.
	longClosure = 100 * time.Millisecond

	// burstSpan is how soon after a long closure a refusal is taken for
	// the burst's, which found the server's bucket smaller than thought.
	burstSpan = 50 * time.Millisecond

	// burstSpent is the share of the server's burst that must have got
	// through since a long closure for a refusal to be the burst's end.
	burstSpent = 0.8

	// minSpentBurst and spentWithin: only a burst this large, refused
	// this soon after the opening, is taken for spent. A small one is no
	// different from a rate's first refusal.
	minSpentBurst = 10
	spentWithin   = 250 * time.Millisecond

	// tentativeGrowth is how often an unconfirmed in-flight limit widens.
	tentativeGrowth = 50 * time.Millisecond

	// boundSlack is how long after the rate last held a request back its
	// search or climb still advances.
	boundSlack = 50 * time.Millisecond

	// headerTrust is how long header-stated limits silence the learner.
	headerTrust = time.Minute
)

// A phase is where the learner is in finding the server's request rate.
type phase uint8

const (
	// unlimited: no refusal seen (or none binds): no rate is set.
	unlimited phase = iota
	// searching: refused, with no estimate: the rate grows from base,
	// doubling every searchDoubling, until the server refuses again.
	searching
	// holding: sending at sendMargin times the estimate.
	holding
	// climbing: past a hold, the rate grows above the estimate to find a
	// limit that was raised.
	climbing
	// fixed: the caller stated the rate; refusals lower it for a while.
	fixed
)

// A learner infers a server's limits from its answers, when no header states
// them: a request rate, and an in-flight limit for servers that refuse by
// concurrency (DeepSeek's, among others).
//
// The model is a token bucket of unknown size B refilled at an unknown rate
// L. Every refusal says the bucket was empty when the refused request
// arrived, and every accepted request used a unit that was there. Three
// facts follow, whatever the pattern of sending:
//
//   - after a refusal at time r, the n requests accepted by time a took units
//     refilled since r, so L ≥ (n-1)/(a-r): the delivery rate since a refusal
//     is a lower bound on the limit;
//   - any window of w seconds holds at most B + L·w accepted requests, so
//     L ≥ (k-B)/w for the k accepted in it: counted in slots over windows
//     that end at a refusal, and from the exact times of the last few sends
//     at slow rates, where counts are too small;
//   - between two refusals w apart, the bucket refilled no more than the k
//     requests accepted meanwhile took, and less than one unit more, so
//     L < (k+1)/w, as long as k+1 is less than the burst the cold start
//     proved (else the bucket may have filled and wasted refill): an upper
//     bound (refillBound), which caps every guess above the lower bounds.
//
// The learner sends at sendMargin times the best lower bound (holding),
// then climbs past it, slowly at first, so that a raised limit is found
// again; the next refusal sets the estimate anew. A hold lasts at least
// minHold, and at slow rates holdRequests requests, doubled after each climb
// in a row that found nothing new, so that climbs cost few refusals per
// request. A refusal met at or below
// the estimate means the limit fell, or that another client now shares it:
// the rate is cut by refusalCut and measured again from there, and the
// hold that follows lasts minHold alone. Before any
// estimate exists (the first refusal after a cold start), the rate starts
// from what the cold start got through and doubles until the server refuses
// (searching), as TCP's slow start does, but by the clock, not per round
// trip, so that it works the same for fast and slow answers, and
// costlySlowdown times less often when refusals are costly. A search's or
// a climb's clock runs only while the rate holds requests back: not while
// the gate does, nor while there is little to send.
//
// An in-flight limit is learned alongside: a refusal of a request that left
// while more requests were in flight than had ever been accepted together
// recently is explained by a concurrency cap at that level, and the learner
// caps the window there rather than cut the rate; a refusal below it shows
// that the limit is a rate after all, and lifts the window. During the cold
// start the window also does what TCP's initial window does: the first
// request goes alone, and each answer lets one more out.
//
// A learner is not safe for concurrent use (the partition's mutex guards
// it); times are passed in, so that it is tested without a clock.
type learner struct {
	floor  float64 // no rate is ever set below this
	stated float64 // the caller's rate (WithRate); 0 when none

	phase phase
	// quietClimbs counts the climbs in a row that found no higher limit.
	quietClimbs uint8
	// cut: the estimate held was cut by a refusal below it.
	cut bool
	// coldOut counts the requests the cold start's first refusal found
	// still out and counted as served (see endCold) whose answers have
	// not come: each answer of the cold start's requests that comes later
	// settles one of them instead of counting anew.
	coldOut uint16
	phaseAt time.Time // when the phase began
	base    float64   // the search's starting rate, or the rate held or climbed from
	limit   float64   // the estimate of the server's rate; 0 while unknown
	peak    float64   // the highest estimate held
	burst   float64   // the estimate of the server's burst; 0 while unknown
	// maxBurst bounds the server's burst from above: what the cold start
	// got through, its late answers included. Rates measured over windows
	// assume no more than this was in the bucket when a window began.
	maxBurst float64
	hold     time.Duration

	// The refusal the delivery-rate bound counts from, when its answer
	// came, and what has been accepted since (requests that left after it).
	refusedAt    time.Time
	refusalHeard time.Time
	sinceRefusal int
	// leftSinceRefusal counts the requests sent since that refusal: more
	// than were accepted, and the server was refusing all along.
	leftSinceRefusal int
	// regime is the earliest send time whose answers describe the current
	// limit: windows that start before it mix an old limit with a new one.
	regime time.Time
	sends  slotRing
	recent sendLog // the last few sends, for slow rates

	// A refusal's estimate is made at once from the answers that have
	// arrived, and made again once the answers of the requests that left
	// before it are in (successes are slower to answer than refusals):
	// refine then raises the limit to what they show, up to the rate the
	// server refused.
	refine struct {
		active        bool
		end, prev, at time.Time
		count         int // accepted since prev, when prev is older than the ring
		ceiling       float64
	}

	// The cold start: when it began, when its first refusal was answered
	// (coldEnd), and what it got through: the requests that left no later
	// than the refused one (see coldRefused) and were accepted, whenever
	// their answers came, for a refusal is answered faster than a success.
	// A cold start's refusal is taken for a cap's
	// only if answers have come back from about as many requests out at
	// once: with slow answers, nothing is known yet of the levels served.
	coldFrom     time.Time
	coldEnd      time.Time
	coldAccepted int
	coldSpan     time.Duration // from the cold start to its first refusal
	searched     bool          // a rate search has started since
	coldSearch   bool          // the search is the one from the cold start

	// The in-flight limit: window (0 for none), and the most requests
	// accepted together since the last refusal.
	window     int
	windowAt   time.Time // when window last changed, for growth
	windowHold time.Duration
	inFlightOK int
	// inFlightOKBefore is the same count before the last refusal, so that
	// a refusal soon after another still compares with a full picture.
	inFlightOKBefore int
	capped           bool // window is a learned concurrency cap, not the cold start's
	// sure: a second refusal confirmed the cap. The cold start's first
	// refusal looks the same under a cap and under a rate, so until then
	// the window widens fast (tentativeGrowth), and a rate that is the real
	// limit soon meets refusals below it that lift the window.
	sure bool
	// rateSeen: a refusal came where requests were being accepted, or a
	// probe was refused with the others out of the way. The limit is a
	// rate then, and no cap is inferred from later refusals.
	rateSeen bool
	// gateClosed: the gate is closed, so the rate holds nobody back.
	gateClosed bool

	headersAt time.Time // when headers last stated the limits

	cost        time.Duration // what refusals cost lately: how long the gate stayed closed
	openedAt    time.Time     // when the gate last opened after a long closure
	sinceOpened int           // requests accepted that left since
	boundAt     time.Time     // when the rate last held a request back
	advancedAt  time.Time     // when advance last ran
}

func newLearner(now time.Time, floor, stated float64, statedBurst int) learner {
	l := learner{floor: floor, coldFrom: now, window: 1, windowAt: now, hold: minHold, windowHold: minWindowHold, advancedAt: now}
	if stated > 0 && !math.IsInf(stated, 1) {
		l.stated, l.limit, l.burst = stated, stated, float64(max(statedBurst, 1))
		l.floor = min(floor, stated)
		l.phase, l.phaseAt, l.base = fixed, now, stated
		l.window = 0
	}
	return l
}

// rate returns the request rate to send at, at now; +Inf for none.
func (l *learner) rate(now time.Time) float64 {
	if l.trusted(now) && l.limit > 0 {
		return l.limit // the headers' rate, which the pacer applies itself
	}
	switch l.phase {
	case searching:
		d := now.Sub(l.phaseAt)
		if l.costly() {
			// The refusal that ends the search costs as much whatever
			// the overshoot; a slower search ends nearer the limit,
			// after a longer window to measure the rate over.
			d /= costlySlowdown
		}
		return searchRate(l.base, d)
	case holding:
		return max(l.limit*sendMargin, l.floor)
	case climbing:
		x := now.Sub(l.phaseAt).Seconds() / l.slowed(time.Second).Seconds()
		// The climb adds to the estimate in proportion to the highest
		// limit held, not the current one: clients that share a key and
		// were cut to unequal parts climb back by equal amounts, and
		// their parts even out, as TCP's flows do.
		return max(l.limit*sendMargin+max(l.peak, l.limit)*sendMargin*climbGain*x*x, l.floor)
	case fixed:
		// A stated rate lowered by refusals comes back over a hold.
		if l.base >= l.stated {
			return l.stated
		}
		x := now.Sub(l.phaseAt).Seconds()
		return min(l.base*(1+climbGain*x*x), l.stated)
	}
	return math.Inf(1)
}

// advance moves the learner through the phases that time alone ends: a hold
// gives way to a climb, a climb far above the estimate to a search.
func (l *learner) advance(now time.Time) {
	if l.trusted(now) {
		return
	}
	if l.phase == searching || l.phase == climbing {
		if idle := now.Sub(latest(l.advancedAt, l.boundAt.Add(boundSlack))); idle > 0 {
			// The rate has not held anyone back lately: stop its clock.
			l.phaseAt = l.phaseAt.Add(idle)
		}
	}
	l.advancedAt = now
	switch l.phase {
	case holding:
		hold := max(l.hold, costlyHold*l.cost)
		if !l.cut {
			// After a cut the limit is in doubt, and a climb worth its
			// cost: the capacity another client took may be free again.
			hold = max(hold, l.perRequests(holdRequests*float64(int(1)<<l.quietClimbs)))
		}
		if now.Sub(l.phaseAt) >= hold {
			l.phase, l.phaseAt = climbing, now
		}
	case climbing:
		if r := l.rate(now); r > l.limit*climbSearch {
			l.phase, l.phaseAt, l.base = searching, now, r
		}
	case searching:
		// A search that outgrows every rate the server has been seen to
		// serve is not limited by the rate: the window, or nothing, is.
		if r := l.rate(now); l.limit > 0 && r > 8*l.limit || r > 1e6 {
			l.phase, l.phaseAt = unlimited, now
		}
	}
	switch {
	case l.window == 0:
	case !l.capped && now.Sub(l.windowAt) >= coldWindowGrowth:
		// Cold start, and no answer for a while: let more out anyway.
		l.window = min(2*l.window, maxColdWindow)
		l.windowAt = now
	case l.capped && !l.sure && now.Sub(l.windowAt) >= tentativeGrowth:
		l.window++
		l.windowAt = now
	case l.capped && now.Sub(l.windowAt) >= l.windowHold:
		l.window++
		l.windowAt = now
	}
}

// sendBurst returns the burst to send at rate r at now: the estimate of the
// server's burst, but no more than a search sends in searchDoubling while it
// searches. A search's rate is a guess that may be far above the limit, and
// the bucket it fills while the gate is closed would leave all at once at
// the opening.
func (l *learner) sendBurst(now time.Time, r float64) float64 {
	if l.phase == searching && !l.trusted(now) {
		return min(l.burst, max(1, math.Floor(r*searchDoubling.Seconds())))
	}
	return l.burst
}

// perRequests returns how long n requests take at the estimated limit, at
// least a second: a slow limit holds and climbs by the requests it serves,
// not by the clock, so that its few requests are not mostly refused.
func (l *learner) perRequests(n float64) time.Duration {
	if l.limit <= 0 {
		return time.Second
	}
	return max(time.Second, time.Duration(n/l.limit*float64(time.Second)))
}

// reopened records that the gate opened at now after d closed: what the last
// refusal cost. Refusals that cost long (a long Retry-After, a penalty box
// that every early probe extends) make the learner careful: its climbs slow
// down, and its holds lengthen, in proportion.
//
// The delivery rate is not measured across a closed gate: the server's
// bucket refilled meanwhile, up to its burst, and none of it was used.
func (l *learner) reopened(now time.Time, d time.Duration) {
	l.gateClosed = false
	l.cost = max(l.cost/2, d)
	if d > longClosure {
		l.openedAt, l.sinceOpened = now, 0
	}
}

// costly reports whether refusals have cost a second or more lately (the
// gate stayed closed that long, as a penalty box or a long Retry-After
// holds it): one more refusal then costs more than sending below the limit
// for a while, so a search slows down (see rate), and what it measured is
// kept rather than searched for again (see searchRefused). A refusal that
// costs about a refill makes a fast search the cheaper way.
func (l *learner) costly() bool { return l.cost >= time.Second }

// slowed returns d stretched by the cost of refusals: d as is when they
// cost no more than a refill, up to costlySlowdown times d when they cost
// a second or more.
func (l *learner) slowed(d time.Duration) time.Duration {
	f := min(max(l.cost.Seconds()/time.Second.Seconds(), 0), 1)
	return time.Duration(float64(d) * (1 + (costlySlowdown-1)*f))
}

// bound records that the rate holds a request back until until: searches
// and climbs advance only while it does, so that a rate nobody sends at (the
// window binds, or there is little to send) does not grow out of reach.
//
// While the gate is closed, the budget's waits are the gate's, not the
// rate's: they do not count.
func (l *learner) bound(until time.Time) {
	if !l.gateClosed {
		l.boundAt = latest(l.boundAt, until)
	}
}

// closed records that the gate closed.
func (l *learner) closed() { l.gateClosed = true }

// accepted records that a request sent at sent was served; level is how
// many requests the server held together with it (partition.successLevel),
// 0 when none is known.
func (l *learner) accepted(now, sent time.Time, level int) {
	l.recent.mark(sent, sendAccepted)
	if sent.After(l.refusedAt) {
		l.sinceRefusal++
	}
	if !l.openedAt.IsZero() && !sent.Before(l.openedAt) {
		l.sinceOpened++
	}
	if l.refine.active {
		if !sent.After(l.refine.end) && sent.After(l.refine.prev) {
			l.refine.count++
		}
		if sent.After(l.refine.at) {
			l.finishRefine(now)
		}
	}
	l.inFlightOK = max(l.inFlightOK, level)
	if l.coldEnd.IsZero() || !sent.After(l.coldRefused()) {
		if l.coldOut > 0 {
			l.coldOut-- // counted already, as out
		} else {
			l.coldAccepted++
		}
		if !l.coldEnd.IsZero() {
			l.maxBurst = max(l.maxBurst, float64(l.coldAccepted))
			l.refineBurst()
			if l.phase == searching && l.coldSearch {
				// A success slower than the refusal: the search starts
				// from what the cold start got through, this included.
				l.base = max(l.base, l.coldBase())
			}
		}
	}
	if l.window > 0 && !l.sure {
		// The cold start's window, or a cap not yet confirmed, opens
		// by one per answer: it doubles every round trip while requests
		// keep it full.
		if l.window++; l.window >= maxColdWindow {
			l.window, l.capped = 0, false
		}
		l.windowAt = now
	}
}

// left records that a request left at now. Until its answer comes it
// counts as accepted in the rates measured: refusals are answered at once,
// successes only once served, so a request still out when a refusal comes
// back was most likely let through.
func (l *learner) left(now time.Time) {
	l.sends.add(now, 1)
	l.recent.add(now)
	l.leftSinceRefusal++
}

// unanswered records that a request sent at sent was not accepted after
// all (an overloaded answer, a transport error).
func (l *learner) unanswered(sent time.Time) {
	l.sends.add(sent, -1)
	l.recent.mark(sent, sendRefused)
}

// A refusal is what the learner made of one: explained by a concurrency
// cap (the rate is untouched, the in-flight limit holds the others), or by a
// burst spent after a long closure (the server will not take more before
// its window turns, so probing early is pointless).
type refusal struct{ concurrency, spent bool }

// refused records that the server refused a request sent at sent, and says
// what it made of it; level is how many requests the server held together
// with it (partition.refusalLevel), 0 when none is known (a refusal heard
// from the fleet).
//
// A refused probe (probe set) tells the learner little: it was sent into a
// bucket known to be empty, early on purpose. It moves the point the
// delivery rate is measured from, and if it was refused with the others out
// of the way, it shows that the limit is a rate, not a cap.
func (l *learner) refused(now, sent time.Time, level int, probe bool) refusal {
	l.sends.add(sent, -1)
	l.recent.mark(sent, sendRefused)
	if !l.coldEnd.IsZero() && slotOf(sent) < slotOf(l.coldRefused()) && l.coldOut > 0 && !probe {
		// A refusal of a request the cold start's first refusal found
		// out: it was counted in the burst. (One that was not counted,
		// answered at the same instant, must not take a served one off.)
		l.coldOut--
		l.coldAccepted = max(l.coldAccepted-1, 1)
		l.maxBurst = min(l.maxBurst, float64(l.coldAccepted))
		l.refineBurst()
	}
	if l.straggler(sent) {
		return refusal{} // the refusal it follows said it already
	}
	okPeak := max(l.inFlightOK, l.inFlightOKBefore)
	if probe && !l.coldEnd.IsZero() {
		l.markRefusal(now, sent)
		if level < okPeak-1 || level < minCap {
			l.rateShown(now)
		}
		return refusal{}
	}
	prevRefusal := l.refusedAt
	defer func() {
		l.markRefusal(now, sent)
		l.inFlightOKBefore, l.inFlightOK = l.inFlightOK, 0
	}()
	if l.trusted(now) {
		return refusal{}
	}
	cold := l.coldEnd.IsZero()
	if cold {
		l.endCold(now, sent)
	}
	hedged := l.coldSearch && !l.searched
	if l.capRefusal(now, level, okPeak, cold, l.openingBurst(sent)) {
		if hedged && l.sure {
			l.hedgeConfirmed(now, sent, prevRefusal)
		}
		return refusal{concurrency: true}
	}
	if l.burstSpent(sent) {
		return refusal{spent: true}
	}

	r := l.rate(now)
	est := l.estimate(now, sent, prevRefusal, l.sinceRefusal)
	ceil := l.refillBound(sent, prevRefusal)
	l.refine.active, l.refine.end, l.refine.prev, l.refine.at = true, sent, prevRefusal, now
	l.refine.count, l.refine.ceiling = l.sinceRefusal, r
	switch l.phase {
	case unlimited:
		switch {
		case !l.searched:
			l.searchFromCold(now)
		case est > 0:
			l.startHold(now, min(est, ceil))
		default:
			// Unlimited for a while and refused: search from what got
			// through recently.
			l.startSearch(now, min(max(l.sends.rate(sent, time.Second), l.limit*refusalCut), ceil))
		}
	case searching:
		l.searchRefused(now, sent, prevRefusal, r, est, ceil)
	case climbing:
		l.climbRefused(now, sent, r, est, ceil)
	case holding:
		l.holdRefused(now, sent, prevRefusal, r, ceil)
	case fixed:
		l.base, l.phaseAt = max(r*refusalCut, l.floor), now
	}
	return refusal{}
}

// straggler reports whether a request sent at sent left before the learner
// heard of the last refusal: its own refusal or empty bucket is part of the
// same episode, not a new one. Over a network the refusals of one burst
// come back microseconds apart, each of a request sent a little later than
// the one before; counting each as news would cut the rate once per request.
func (l *learner) straggler(sent time.Time) bool {
	return !l.refusedAt.IsZero() && (!sent.After(l.refusedAt) || sent.Before(l.refusalHeard))
}

// markRefusal makes the refusal, heard at now, of a request sent at sent the
// one the delivery rate is counted from.
func (l *learner) markRefusal(now, sent time.Time) {
	l.refusedAt, l.refusalHeard = sent, now
	l.sinceRefusal, l.leftSinceRefusal = 0, 0
}

// coldRefused returns when the request the cold start's first refusal
// answered left: the server's bucket was empty then, so what it served of
// the requests that left by then is what it held, with what it refilled;
// those that left later took refill alone.
func (l *learner) coldRefused() time.Time { return l.coldFrom.Add(l.coldSpan) }

// endCold ends the cold start at its first refusal, of a request sent at
// sent: what it got through is the first estimate of the server's burst.
func (l *learner) endCold(now, sent time.Time) {
	l.coldSpan, l.coldEnd = sent.Sub(l.coldFrom), now
	if n, ok := l.sends.count(l.coldFrom.Add(-slotWidth), sent.Add(-slotWidth)); ok && n > l.coldAccepted {
		// Counting the requests still out: with slow answers, few of
		// the successes are in yet.
		l.coldOut = uint16(min(n-l.coldAccepted, math.MaxUint16))
		l.coldAccepted = n
	}
	l.burst, l.maxBurst = float64(max(l.coldAccepted, 1)), float64(max(l.coldAccepted, 1))
}

// capRefusal reports whether a refusal at inFlight requests out is a
// concurrency cap's, and learns the cap if so; okPeak is the most requests
// accepted together lately.
//
// A refusal at the highest level anything was accepted at, or above, is
// explained by a cap just below it (our count and the server's differ by
// the answers on their way, hence the level itself counts). A rate's
// refusals can look the same (a burst runs out in the order requests
// left), so the first such refusal makes the cap tentative, at half the
// level after a cold start; the second confirms it. A refusal below the
// levels accepted shows a rate, and from then on no cap is inferred; so
// does one below minCap, even under a cap already inferred, and no cap is
// inferred while the levels served stay below minCap: several clients that
// share a rate each have a few requests out, and their refusals come at
// levels as high as any they were served at. (A refusal's level is its
// burst's, and a success's what its burst got served together; see
// sendSpread.) A refusal in the burst that follows a long closure
// (opening; see openingBurst) does not shrink a confirmed cap, though it
// shows a rate as any other does; a tentative cap's is hedged already, and
// skipping it there let the search overshoot a rate (limit-rises: 4 runs in
// 30 at 1.16x).
//
// Until the two are told apart after a cold start, a rate search hedges
// the tentative cap: both hold requests back. Under a rate the server's
// bucket is empty, and a window's worth let out at once when the gate
// opens meets refusals for all but one or two; over a network all of it
// leaves before the first refusal is heard (the retry-after batch saw 8 of
// 9 refused). A confirmed cap restarts the hedge lower (hedgeConfirmed); a
// refusal of the hedge starts the search again from there, as a refusal that
// shows a rate does.
func (l *learner) capRefusal(now time.Time, inFlight, okPeak int, cold, opening bool) bool {
	signature := okPeak >= minCap-1 && (inFlight >= max(okPeak, minCap) || l.capped && inFlight >= max(okPeak-1, minCap))
	if l.rateSeen || !signature || cold && 2*okPeak < inFlight {
		// (After a cold start with slow answers, too few have come back
		// to tell the levels served.)
		l.rateShown(time.Time{})
		return false
	}
	if opening && l.sure {
		return false // the burst's, not the cap's: see openingBurst
	}
	c := max(min(okPeak, inFlight-1), 1)
	switch {
	case cold:
		l.window, l.sure = max(c/2, 1), false
		l.searchFromCold(now)
		l.searched = false // a hedge: see searchRefused
	case l.capped && l.sure:
		l.windowHold = min(2*l.windowHold, maxWindowHold)
		l.window = c
	default:
		l.window, l.sure = c, l.capped
	}
	l.windowAt, l.capped = now, true
	return true
}

// hedgeConfirmed handles the refusal, of a request sent at sent, that
// confirmed the cap the cold start's refusal suggested, while the search
// that hedges it runs; prev is the refusal before.
//
// Over a network the second refusal does not settle it either: a search
// paced at r has r times the round trip out, so a rate's refusals come at
// levels that grow with the round trip, and at 30ms the search's refusal
// comes at the level of the cold start's (article: 17 after 16). Dropping
// the search then let the window's worth out at the window's pace into an
// empty bucket (14% 429s there; a penalty box failed 271 requests). So the
// search starts again from the lower bound on the rate this refusal proves:
// under a cap it soon outgrows what the window lets out, and holds nobody
// back; under a rate it is refused below the window, which shows the rate.
func (l *learner) hedgeConfirmed(now, sent, prev time.Time) {
	est := min(l.estimate(now, sent, prev, l.sinceRefusal), l.refillBound(sent, prev))
	if est <= 0 {
		l.phase, l.phaseAt = unlimited, now // nothing measured to hedge with
		return
	}
	l.startSearch(now, est)
}

// openingBurst reports whether a request sent at sent left in the burst that
// follows the gate's opening after a long closure. Its refusal says the
// server's bucket held less than the pacer let out at once, not that the
// rate or a cap was passed: after a penalty box's 2s, the window's worth
// leaves at once, and read as a cap's, such refusals shrank the window by
// one each time while the rate, never refused, stayed above the server's.
func (l *learner) openingBurst(sent time.Time) bool {
	return !l.openedAt.IsZero() && !sent.Before(l.openedAt) && sent.Sub(l.openedAt) < burstSpan
}

// rateShown records that the limit is a rate, not a cap: the window is
// lifted. If now is set and no rate search has started yet, one starts.
func (l *learner) rateShown(now time.Time) {
	l.rateSeen = true
	l.window, l.capped, l.sure = 0, false, false
	if !now.IsZero() && !l.searched {
		l.searchFromCold(now)
	}
}

// burstSpent reports whether a refusal of a request sent at sent ends the
// burst the server let through after a long closure, about as large as its
// bucket: then the burst is spent (a window's quota, a bucket emptied), not
// the rate too high, and the rate stays; the burst is what got through.
func (l *learner) burstSpent(sent time.Time) bool {
	if l.openedAt.IsZero() || sent.Before(l.openedAt) || l.maxBurst < minSpentBurst ||
		float64(l.sinceOpened) < burstSpent*l.maxBurst || sent.Sub(l.openedAt) >= spentWithin {
		return false
	}
	l.burst = max(l.burst, float64(l.sinceOpened))
	l.maxBurst = max(l.maxBurst, l.burst)
	l.openedAt = time.Time{}
	return true
}

// searchFromCold starts the first search for a rate, from what the cold
// start got through spread over its length and a lead.
func (l *learner) searchFromCold(now time.Time) {
	l.startSearch(now, l.coldBase())
	l.coldSearch = true
}

// coldBase is the rate a search from the cold start starts at.
func (l *learner) coldBase() float64 {
	return float64(l.coldAccepted) / (l.coldSpan + searchLead).Seconds()
}

// searchRefused ends a search refused at rate r, with estimate est and
// ceiling ceil (refillBound), of a request sent at sent; prev is the
// refusal before.
func (l *learner) searchRefused(now, sent, prev time.Time, r, est, ceil float64) {
	if !l.searched {
		// The search that hedged a cold start's refusal taken for a
		// cap's (see capRefusal), refused: the limit is a rate, and the
		// search starts again from here, as if that refusal had shown
		// it; its base is what the cold start got through, or the
		// ceiling the two refusals prove when that is lower (a bucket
		// whose burst dwarfs its rate got the cold start far).
		//
		// Unless refusals are costly and the hedge measured more than
		// the cold start got through: a new search would end in one
		// more refusal at full cost (a penalty box suspends for 2s each
		// time), so what the hedge measured stands, as any search's
		// does.
		if est <= l.coldBase() || !l.costly() {
			l.searchFromCold(now)
			if ceil < l.base {
				l.base, l.coldSearch = max(ceil, l.floor), false
			}
			return
		}
		l.searched, l.coldSearch = true, false
	}
	if n, _ := l.sends.count(sent.Add(-time.Second), sent); n < fewSamples {
		// Few requests to measure over: the estimate is coarse, and the
		// rate the search was refused at is not far above the limit (it
		// doubles at most every searchDoubling), unless the ceiling shows
		// it was.
		est = min(max(est, r/2), ceil)
	}
	if est <= 0 {
		l.startSearch(now, min(r/2, ceil))
		return
	}
	if l.limit > 0 {
		// A climb that outgrew the estimate and searched on.
		l.climbEnded(est > l.limit*1.02)
	}
	l.startHold(now, est)
	l.refineBurst()
	if sent.Sub(prev) < time.Second/2 {
		// Measured over a short window, the estimate may be well below
		// the limit: climb from it at once.
		l.phase = climbing
	}
}

// climbRefused ends a climb refused at rate r, with estimate est: it found
// the edge. With few requests to count (a slow limit), the estimate is
// coarse, and the edge itself says more: a slow climb is refused soon after
// it passes the limit. A climb that found nothing new makes the next hold
// longer.
//
// A rate at or above the ceiling ceil (refillBound) is no edge: the climb
// was refused well past the limit, and only the estimate counts.
func (l *learner) climbRefused(now, sent time.Time, r, est, ceil float64) {
	if n, _ := l.sends.count(sent.Add(-time.Second), sent); n < fewSamples && r*edgeShare < ceil {
		est = max(est, r*edgeShare)
	}
	l.climbEnded(est > l.limit*1.02)
	l.startHold(now, max(est, l.limit))
}

// holdRefused handles a refusal while holding at rate r, of a request sent
// at sent; prev is the refusal before, ceil the ceiling it proves
// (refillBound).
func (l *learner) holdRefused(now, sent, prev time.Time, r, ceil float64) {
	if l.openingBurst(sent) && r <= ceil {
		// Refused in the burst that followed a long closure: the burst,
		// not the rate, was too much. What got through since the opening
		// (and the probe that opened the gate) is what the server's
		// bucket held.
		n := float64(l.sinceOpened + 1)
		l.maxBurst, l.burst = min(l.maxBurst, n), min(l.burst, n)
		return
	}
	// Refused at or below the estimate: the limit fell, or another client
	// shares it now. Cut, and measure afresh from here: what was measured
	// before may describe the old limit. If the server has been refusing
	// all along since the last refusal (more left than were accepted), what
	// it accepted meanwhile is its rate, and the cut goes at least that far.
	cut := r * refusalCut / sendMargin
	if w := sent.Sub(prev); !prev.IsZero() && w > 0 && l.leftSinceRefusal > l.sinceRefusal+1 {
		cut = min(cut, float64(l.sinceRefusal+1)/w.Seconds())
	}
	l.regime = sent
	l.climbEnded(true)
	l.startHold(now, min(cut, ceil))
	l.cut = true
}

// climbEnded records whether the climb that just ended found the limit
// moved: one that found nothing new makes the next hold longer, in time up
// to maxHold and, at slow rates, in requests.
func (l *learner) climbEnded(moved bool) {
	if moved {
		l.hold, l.quietClimbs = minHold, 0
		return
	}
	l.hold = min(2*l.hold, maxHold)
	l.quietClimbs = min(l.quietClimbs+1, maxQuietClimbs)
}

// refillBound returns an upper bound on the server's rate that the refusal
// of a request sent at sent proves, prev being the refusal before it, or
// +Inf. The bucket was empty at both, so what it refilled between them was
// taken by the requests accepted meanwhile, with less than one to spare;
// unless it filled up meanwhile and wasted some refill, which it cannot
// have done if fewer were accepted than the burst the cold start proved
// (what it got through, less what the bound refilled while it lasted).
func (l *learner) refillBound(sent, prev time.Time) float64 {
	w := sent.Sub(prev)
	if prev.IsZero() || l.coldEnd.IsZero() || w < minWindow {
		return math.Inf(1)
	}
	// Every request that left between them and was not refused counts,
	// those still unanswered too.
	k, ok := l.sends.count(prev.Add(-slotWidth), sent)
	if !ok {
		k = max(l.leftSinceRefusal, l.sinceRefusal)
	}
	u := float64(k+1) / w.Seconds()
	if float64(k+1) >= float64(l.coldAccepted)-u*l.coldSpan.Seconds() {
		return math.Inf(1) // the bucket may have filled
	}
	return u
}

// estimate returns the best lower bound on the server's rate that the
// refusal of a request sent at sent proves, or 0 when no window is long and
// full enough to tell. prev is the refusal before it, and since the requests
// accepted that left between the two.
func (l *learner) estimate(now, sent, prev time.Time, since int) float64 {
	best := 0.0
	if !prev.IsZero() && !prev.Before(l.regime) && !prev.Before(l.openedAt) {
		if n, ok := l.sends.count(prev, sent); ok {
			since = max(since, n)
		}
		if w := sent.Sub(prev); w >= minWindow && since >= minEstimateCount {
			best = float64(since-1) / w.Seconds()
		}
	}
	if l.maxBurst > 0 {
		best = max(best, l.sends.bestRate(sent, l.maxBurst, l.regime))
		best = max(best, l.recent.bestRate(sent, l.regime, l.maxBurst, minWindow))
	}
	return best
}

// finishRefine makes the last refusal's estimate again, now that the
// answers of the requests that left before it are in, and raises the limit
// to it if the learner holds or climbs from that refusal's estimate.
func (l *learner) finishRefine(now time.Time) {
	l.refine.active = false
	if l.phase != holding && l.phase != climbing {
		return
	}
	est := min(l.estimate(now, l.refine.end, l.refine.prev, l.refine.count), l.refine.ceiling)
	if est > l.limit {
		l.limit = est
	}
}

// refineBurst corrects the cold start's burst estimate, which counted what
// was refilled while it lasted as well.
func (l *learner) refineBurst() {
	if l.limit <= 0 || l.coldAccepted == 0 {
		return
	}
	l.burst = max(1, float64(l.coldAccepted)-l.limit*l.coldSpan.Seconds())
}

// searchRate returns the rate a search that started at base has reached
// after d: doubling every searchDoubling, or every searchCount requests
// when that is longer, so that a slow limit is given the requests it takes
// to refuse before the rate is far past it.
func searchRate(base float64, d time.Duration) float64 {
	t := d.Seconds()
	knee := searchCount / searchDoubling.Seconds() // where the two meet
	if base < knee {
		// dr/dt = r²·ln2/searchCount: r = 1/(1/base - t·ln2/searchCount)
		toKnee := searchCount * (1/base - 1/knee) / math.Ln2
		if t < toKnee {
			return 1 / (1/base - t*math.Ln2/searchCount)
		}
		base, t = knee, t-toKnee
	}
	return base * math.Exp2(t/searchDoubling.Seconds())
}

func (l *learner) startSearch(now time.Time, base float64) {
	l.phase, l.phaseAt, l.base = searching, now, max(base, l.floor)
	l.searched, l.coldSearch = true, false
}

func (l *learner) startHold(now time.Time, limit float64) {
	l.limit = max(limit, l.floor)
	l.peak = max(l.peak, l.limit)
	l.phase, l.phaseAt = holding, now
	l.cut = false
}

// trusted reports whether headers stated the limits recently enough that
// they, not the learner, set the rate.
func (l *learner) trusted(now time.Time) bool {
	return !l.headersAt.IsZero() && now.Sub(l.headersAt) < headerTrust
}

// fromHeaders records that headers stated the limits: the learner stays
// quiet for headerTrust, and no window holds requests back.
func (l *learner) fromHeaders(now time.Time, rate float64, burst int64) {
	l.headersAt = now
	l.window, l.capped = 0, false
	if rate > 0 {
		l.limit = rate
		if l.phase != fixed {
			l.phase, l.phaseAt = holding, now
		}
	}
	if burst > 0 {
		l.burst = float64(burst)
	}
}

// informed records what headers that do not state the rate precisely still
// say: the burst (limit), a lower bound on the rate (lo), and the time until
// the bucket is full again. No window holds requests back once a server
// states its limits, so a cold learner starts searching for the rate at
// once, from what the headers guarantee.
func (l *learner) informed(now time.Time, lo float64, limit int64, reset time.Duration) {
	l.window, l.capped, l.sure = 0, false, false
	if limit > 0 {
		l.burst, l.maxBurst = float64(limit), float64(limit)
	}
	if l.phase == unlimited && l.coldEnd.IsZero() {
		base := lo
		if limit > 0 && reset > 0 {
			base = max(base, float64(limit)/max(reset, time.Second).Seconds())
		}
		l.coldEnd = now
		l.startSearch(now, base)
	}
}

// drained records that an answer to a request sent at sent showed the
// server's bucket empty: as good a sign as a refusal of where the limit is,
// at no cost. It sets the estimate from the accepted rate since the last
// such sign, and ends a search or a climb there.
func (l *learner) drained(now, sent time.Time) {
	if l.straggler(sent) {
		return
	}
	est := l.estimate(now, sent, l.refusedAt, l.sinceRefusal)
	l.refine.active, l.refine.end, l.refine.prev, l.refine.at = true, sent, l.refusedAt, now
	l.refine.count, l.refine.ceiling = l.sinceRefusal, math.Inf(1)
	l.markRefusal(now, sent)
	if est <= 0 {
		return
	}
	// No refusal was paid for this sign, so the learner climbs again at
	// once rather than hold.
	switch l.phase {
	case searching, unlimited, holding:
		l.limit = max(l.limit, est)
		l.phase, l.phaseAt = climbing, now
	case climbing:
		if est > l.limit {
			l.limit, l.phaseAt = est, now
		}
	}
}

// latest returns the later of a and b.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
