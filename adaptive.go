package pacehttp

import (
	"math"
	"time"
)

// Tuning of the adaptive estimator; see estimator.
const (
	// probeDoubling is how long the probing rate takes to double. Shorter
	// finds a fast server sooner but spends more of the burst on the
	// overshoot.
	probeDoubling = 200 * time.Millisecond

	// rateMargin is the share of the estimated server rate the pacer
	// sends at once it knows the rate: enough room for the estimate's
	// error (a few requests over a second or so of measurement).
	rateMargin = 0.97

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
	minMeasure = 20 * time.Millisecond
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

	probing    bool
	probeBase  float64
	lastChange time.Time // last change of rate, for probing and raising

	headers time.Time // when headers last stated the limits
}

func newEstimator(now time.Time, floor, rate float64, burst int) estimator {
	e := estimator{floor: floor, rate: math.Inf(1), epoch: now, lastChange: now}
	if rate > 0 && !math.IsInf(rate, 1) {
		e.rate = max(rate, floor)
		e.limit = e.rate
		e.burst = float64(max(burst, 1))
	}
	return e
}

// accept counts a request sent at sent that the server accepted.
func (e *estimator) accept(sent time.Time) {
	if !sent.Before(e.epoch) {
		e.accepted++
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
	if !e.headers.IsZero() && now.Sub(e.headers) < headerTrust {
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
		base := e.burst // one burst per second: a modest start
		if t > minMeasure.Seconds() {
			base = max(base, a/t)
		}
		e.startProbe(max(base, e.floor), reopen)
	case t < minMeasure.Seconds() || a <= e.burst:
		// Far too fast to measure anything: halve and probe again.
		if e.limit > 0 {
			e.limit = max(e.limit*0.7, e.floor)
			e.rate = e.limit * rateMargin
			e.probing = false
		} else {
			e.startProbe(max(min(e.rate, e.probeBase)/2, e.floor), reopen)
		}
	default:
		l := (a - e.burst) / t
		if e.limit > 0 {
			l = min(l, e.limit)
		}
		e.limit = max(l, e.floor)
		e.rate = max(e.limit*rateMargin, e.floor)
		e.probing = false
	}
	e.restart(reopen)
	return e.rate, e.burst, e.rate != prev || e.burst != prevBurst
}

func (e *estimator) startProbe(base float64, at time.Time) {
	e.probing = true
	e.probeBase = base
	e.rate = base
}

func (e *estimator) restart(reopen time.Time) {
	e.epoch = reopen
	e.accepted = 0
	e.lastChange = reopen
}

// tick advances the probe or the slow raise. It returns the new rate and
// whether it changed; it changes it at most every 1/40 of a doubling.
func (e *estimator) tick(now time.Time) (rate float64, changed bool) {
	if math.IsInf(e.rate, 1) || (!e.headers.IsZero() && now.Sub(e.headers) < headerTrust) {
		return e.rate, false
	}
	if e.probing {
		d := now.Sub(e.lastChange)
		if d < probeDoubling/40 {
			return e.rate, false
		}
		e.rate *= math.Exp2(d.Seconds() / probeDoubling.Seconds())
		e.lastChange = now
		return e.rate, true
	}
	if now.Sub(e.lastChange) >= raiseAfter {
		e.rate *= raiseStep
		e.lastChange = now
		return e.rate, true
	}
	return e.rate, false
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
