package pacehttp

import (
	"math"
	"slices"
	"time"
)

// Tuning of the adaptive estimator; see estimator.
const (
	// probeDoubling is how long the probing rate takes to double. Shorter
	// finds a fast server sooner but spends more of the burst on the
	// overshoot.
	probeDoubling = 100 * time.Millisecond

	// rateMargin is the share of the estimated server rate the pacer
	// sends at once it knows the rate: enough room for the estimate's
	// error (a few requests over a second or so of measurement).
	rateMargin = 0.95

	// provenMargin replaces rateMargin once an estimate has held for
	// proveAfter without a throttle.
	provenMargin = 0.98
	proveAfter   = 5 * time.Second

	// raiseAfter and raiseStep probe back up after a quiet spell, so that
	// a server whose limit rose is found again: 5% more every 30s without
	// a throttle.
	raiseAfter = 30 * time.Second
	raiseStep  = 1.05

	// headerTrust is how long header-derived limits silence the estimator.
	headerTrust = time.Minute

	// minMeasure is the shortest span over which a rate is estimated; a
	// throttle sooner than that after the gate opened says the pacer sent
	// far too fast, not how fast the server refills.
	minMeasure = 50 * time.Millisecond

	// maxRefine bounds how much late answers may raise an estimate.
	maxRefine = 1.1

	// sendRing is how many recent accepted sends the estimator keeps.
	sendRing = 2048
)

// An estimator learns a server's request rate from throttling alone, when
// no header states it.
//
// The model is the server's token bucket of size B refilled at L per
// second. Between two throttles the server accepts A requests over T
// seconds; if its bucket was full at the start, A ≈ B + L·T. A throttle soon
// after a cold start (T ≈ 0) therefore reveals B ≈ A. The cool-down that
// follows lets the server's bucket fill again, so the next throttle, after
// a probe that sends faster and faster, gives L ≈ (A - B)/T, whatever path
// the probe took. From then on the pacer sends at rateMargin·L with burst B,
// and further throttles only lower L.
//
// Because each throttle with Retry-After costs a whole cool-down (servers
// round it up to seconds), the scheme is built to need two throttles from a
// cold start, rather than the many small steps of an AIMD or CUBIC curve.
//
// An estimator is not safe for concurrent use; the partition's mutex
// guards it. Times are passed in.
type estimator struct {
	floor float64 // the rate never set below this

	rate  float64 // the current send rate; +Inf when unthrottled
	burst float64 // estimated server burst B; 0 while unknown
	limit float64 // estimated server rate L; 0 while unknown

	epoch    time.Time // when the server's bucket was last believed full
	accepted int64     // requests sent since epoch and accepted
	sends    []int64   // ring of the latest accepted send times (unix ns), once limited
	next     int       // where the ring writes next

	lateFrom, lateUntil time.Time // sends whose late answers still count to burst

	// refinement of the last estimate with answers that arrive late
	refining              bool
	refineFrom, refineEnd time.Time
	refineCap             float64
	late                  []int64

	probing    bool
	probeBase  float64
	lastChange time.Time // last change of rate, for probing and raising

	headers time.Time // when headers last stated the limits
	stated  bool      // the caller stated the rate (WithRate)
	settled bool      // tick made a small, lasting change: apply it
}

func newEstimator(now time.Time, floor, rate float64, burst int) estimator {
	e := estimator{floor: floor, rate: math.Inf(1), epoch: now, lastChange: now}
	if rate > 0 && !math.IsInf(rate, 1) {
		// A stated rate is the caller's word: the floor never lifts it.
		e.rate, e.limit, e.stated = rate, rate, true
		e.floor = min(floor, rate)
		e.burst = float64(max(burst, 1))
	}
	return e
}

// accept counts a request sent at sent that the server accepted.
func (e *estimator) accept(sent time.Time) {
	if sent.Before(e.epoch) {
		if e.refining && !sent.Before(e.refineFrom) && !sent.After(e.refineEnd) {
			e.late = append(e.late, sent.UnixNano())
		}
		if e.limit == 0 && !sent.Before(e.lateFrom) && !sent.After(e.lateUntil) {
			// An answer from before the first throttle, read after
			// it: part of the burst.
			e.burst++
		}
		return
	}
	e.accepted++
	if math.IsInf(e.rate, 1) {
		return
	}
	if e.sends == nil {
		e.sends = make([]int64, 0, sendRing)
	}
	d := sent.UnixNano()
	if len(e.sends) < sendRing {
		e.sends = append(e.sends, d)
	} else {
		e.sends[e.next] = d
		e.next = (e.next + 1) % sendRing
	}
}

// throttle records a refusal of a request sent at sent, and reopen, the
// time the server's bucket is again believed full (the end of the cool-down,
// or now without one). It returns the new rate and burst and whether they
// changed.
func (e *estimator) throttle(now, sent, reopen time.Time) (rate, burst float64, changed bool) {
	if sent.Before(e.epoch) {
		// A straggler sent before the last cool-down ended: the event
		// was counted already.
		return e.rate, e.burst, false
	}
	if e.trusted(now) {
		e.restart(reopen)
		return e.rate, e.burst, false
	}
	a := float64(e.accepted)
	t := sent.Sub(e.epoch).Seconds()
	prev, prevBurst := e.rate, e.burst
	switch {
	case e.burst == 0:
		// First throttle: what got through is the burst (plus what
		// refilled meanwhile, which only makes L's estimate lower).
		e.burst = max(a, 1)
		// Every request that left before this 429 came back belongs to
		// the burst if accepted, whatever order the answers arrive in (a
		// refusal is quicker to answer than a success).
		e.lateFrom, e.lateUntil = e.epoch, now
		base := e.burst // one burst per second: a modest start
		if t > minMeasure.Seconds() {
			base = max(base, a/t)
		}
		e.startProbe(max(base, e.floor))
	case t < minMeasure.Seconds() || a <= e.burst:
		// Far too fast to measure anything: cut by 0.7 (a known limit) or
		// halve the probe and start it again.
		if e.limit > 0 {
			e.limit = max(e.limit*0.7, e.floor)
			e.rate = e.limit * rateMargin
			e.probing = false
		} else {
			e.startProbe(max(min(e.rate, e.probeBase)/2, e.floor))
		}
	default:
		l := max((a-e.burst)/t, bestRate(e.sends, sent, e.burst))
		// Answers still on their way may raise the estimate when the gate
		// opens, by a tenth at most: a short window magnifies any error in
		// the burst's estimate, and an estimate above the server's rate
		// costs a whole cool-down.
		e.refineCap = l * maxRefine
		if e.limit > 0 {
			l = min(l, e.limit)
			e.refineCap = min(e.refineCap, e.limit)
		}
		// Answers of requests sent before the throttle may still be on
		// their way; they refine the estimate when the gate opens.
		e.refining, e.refineFrom, e.refineEnd = true, e.epoch, sent
		e.late = append(e.late[:0], e.sends...)
		e.limit = max(l, e.floor)
		e.rate = max(e.limit*rateMargin, e.floor)
		e.probing = false
	}
	e.restart(reopen)
	return e.rate, e.burst, e.rate != prev || e.burst != prevBurst
}

func (e *estimator) startProbe(base float64) {
	e.probing = true
	e.probeBase = base
	e.rate = base
}

func (e *estimator) restart(reopen time.Time) {
	e.epoch = reopen
	e.accepted = 0
	e.sends = e.sends[:0]
	e.next = 0
	e.lastChange = reopen
}

// bestRate returns the best lower bound on the server's rate that the
// accepted send times (unix nanoseconds, any order) give, for a throttle of
// a request sent at end: the server's bucket was empty then, and held at
// most burst at the start of any window before, so any window of w seconds
// with k accepted sends shows L ≥ (k - burst)/w, with equality for the
// window that starts when the bucket was last full. The bound holds
// whatever the sending pattern, including probes slower than the server,
// during which its bucket filled.
func bestRate(sends []int64, end time.Time, burst float64) float64 {
	ts := slices.Clone(sends)
	slices.Sort(ts)
	e := end.UnixNano()
	best := 0.0
	for i := len(ts) - 1; i >= 0; i-- {
		w := time.Duration(e - ts[i])
		if w < minMeasure {
			continue
		}
		best = max(best, (float64(len(ts)-i)-burst)/w.Seconds())
	}
	return best
}

// refine raises the estimate made at the last throttle with the answers
// that arrived after it, once the gate has opened.
func (e *estimator) refine(now time.Time) bool {
	if !e.refining || now.Before(e.epoch) {
		return false
	}
	e.refining = false
	l := min(bestRate(e.late, e.refineEnd, e.burst), e.refineCap)
	e.late = e.late[:0]
	if l <= e.limit {
		return false
	}
	e.limit = l
	e.rate = max(l*rateMargin, e.floor)
	return true
}

// tick advances the probe or the slow raise. It returns the new rate and
// whether it changed; it changes it at most every 1/40 of a doubling.
func (e *estimator) tick(now time.Time) (rate float64, changed bool) {
	if math.IsInf(e.rate, 1) || e.trusted(now) {
		return e.rate, false
	}
	if e.refine(now) {
		e.lastChange = now
		return e.rate, true
	}
	if e.probing && e.probeBase < e.burst && e.limit == 0 {
		// Answers sent before the first throttle kept arriving after it
		// and grew the burst: probe from what the server really let through,
		// not from what had been counted when the 429 came in.
		e.probeBase = e.burst
		e.rate = max(e.rate, e.burst)
		e.lastChange = latest(now, e.epoch)
		return e.rate, true
	}
	if e.probing {
		// The probe's clock runs only while the gate is open.
		d := now.Sub(latest(e.lastChange, e.epoch))
		if d < probeDoubling/40 {
			return e.rate, false
		}
		e.rate *= math.Exp2(d.Seconds() / probeDoubling.Seconds())
		e.lastChange = now
		return e.rate, true
	}
	if e.limit > 0 && e.rate < e.limit*provenMargin && now.Sub(e.lastChange) >= proveAfter {
		// The estimate has held: close most of the margin.
		e.rate = e.limit * provenMargin
		e.lastChange = now
		e.settled = true
		return e.rate, true
	}
	if now.Sub(e.lastChange) >= raiseAfter {
		e.rate *= raiseStep
		// The limit learned rises with it, so that the next throttle
		// measures from the raised rate, not from the old estimate.
		e.limit = max(e.limit, e.rate/provenMargin)
		e.lastChange = now
		e.settled = true
		return e.rate, true
	}
	return e.rate, false
}

// trusted reports whether headers stated the limits recently enough that
// they, not the estimator, set the rate.
func (e *estimator) trusted(now time.Time) bool {
	return !e.headers.IsZero() && now.Sub(e.headers) < headerTrust
}

// fromHeaders records that headers stated the limits; the estimator then
// stays quiet for headerTrust.
func (e *estimator) fromHeaders(now time.Time, rate float64, burst int64) {
	e.headers = now
	e.probing = false
	if rate > 0 {
		e.rate, e.limit = rate, rate
	}
	if burst > 0 {
		e.burst = float64(burst)
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
