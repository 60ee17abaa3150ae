package pacehttp

import (
	"math/rand/v2"
	"time"
)

// probeTimeout is how long a probe may go unanswered before another may
// leave: a slow answer (a long completion) must not hold the others longer.
const probeTimeout = time.Second

// ceilingMargin is added to the server's ceiling, with a jitter of up to a
// hundredth of it.
const ceilingMargin = time.Millisecond

// A gate holds a partition's requests after the server refused one, and lets
// them out again one probe at a time.
//
// It closes when the server refuses a request that left while it was open,
// until the server's ceiling: its Retry-After, or without one a backoff the
// pacer chooses. A Retry-After in whole seconds is a ceiling rounded up, not
// the time the server needs (a bucket that refills a unit every 10ms says
// 1), so the first probe of a closing goes early, once the estimated refill
// time has passed, instead of idling the whole ceiling. A refused probe is a
// ceiling that was meant: the next probe waits all of it, so that against a
// server that refuses everything there is at most one attempt per
// Retry-After, never a storm. A served probe opens the gate.
//
// A refused probe may be followed by another before the ceiling when the
// partition has reason to expect the server back sooner (reprobe): a server
// that let a burst through, then nothing, is a window whose quota returns
// at its period, which a Retry-After in whole seconds does not tell (see
// quotaWindow); or a server that has been serving the partition at a
// learned rate, whose refill others on the key took (see answered): the
// probes then back off from the refill time. A server that refuses
// everything let nothing through, and is probed once per ceiling still.
//
// Answers to requests that left before the gate closed are stragglers of the
// same refusal: they may lengthen the ceiling, never close it anew. A probe
// unanswered for probeTimeout no longer holds the next.
//
// A gate is guarded by its partition's mutex; times are passed in.
type gate struct {
	closed bool
	// refillProbe: the first probe of this closing waits for the
	// estimated refill time, not for the ceiling.
	refillProbe bool
	probeOut    bool      // a probe is unanswered
	failed      int32     // probes refused since it closed
	closedAt    time.Time // when it last closed
	openedAt    time.Time // when it last opened
	until       time.Time // the server's ceiling
	probeAt     time.Time // the earliest the next probe may leave
	probeSent   time.Time // when the last probe left
}

// shut records a refusal, at now, of a request that left at sent (probe if
// it was the gate's probe). ceiling is how long the server asked for, early
// how soon a first probe may go. It reports whether the gate closed now.
func (g *gate) shut(now, sent time.Time, probe bool, ceiling, early time.Duration) bool {
	ceiling = min(max(ceiling, 0), maxCoolDown)
	refillProbe := early < ceiling
	if ceiling > 0 {
		// Past the server's instant, not on it: a probe sent at the very
		// end of a Retry-After may still find the gate shut (clocks
		// differ, a penalty is restarted by it), and clients told the
		// same instant should not all come back at it.
		ceiling += ceilingMargin + rand.N(ceiling/100+1)
	}
	switch {
	case !g.closed:
		if sent.Before(g.openedAt) {
			return false // answered after the gate reopened: old news
		}
		g.closed, g.closedAt, g.failed, g.probeOut = true, now, 0, false
		g.until = now.Add(ceiling)
		g.probeAt = now.Add(min(ceiling, early))
		g.refillProbe = refillProbe
		return true
	case probe:
		g.probeOut = false
		g.failed++
		g.until = now.Add(ceiling)
		g.probeAt = g.until
	default:
		if until := now.Add(ceiling); sent.Before(g.closedAt) && until.After(g.until) {
			g.until = until
			if g.failed > 0 {
				g.probeAt = until
			}
		}
	}
	return false
}

// hold keeps a closed gate shut for at least d from now, without an early
// probe: a wait the server asked for where the pacer does not read it.
func (g *gate) hold(now time.Time, d time.Duration) {
	if !g.closed {
		return
	}
	until := now.Add(min(max(d, 0), maxCoolDown) + ceilingMargin)
	if until.After(g.until) {
		g.until = until
	}
	if until.After(g.probeAt) {
		g.probeAt, g.refillProbe = until, false
	}
}

// served records that a request that left at sent was served, at now. It
// reports whether that opened the gate.
func (g *gate) served(now, sent time.Time, probe bool) bool {
	if !g.closed || (!probe && !sent.After(g.closedAt)) {
		return false
	}
	g.closed, g.openedAt, g.probeOut = false, now, false
	return true
}

// hasten moves an early first probe not yet sent to at, if that is sooner:
// the refill time it waits for was estimated anew. It reports whether the
// probe moved.
func (g *gate) hasten(at time.Time) bool {
	if !g.closed || !g.refillProbe || g.failed > 0 || g.probeOut || !at.Before(g.probeAt) {
		return false
	}
	g.probeAt = at
	return true
}

// reprobe moves the next probe, after a refused one, to at if that is
// sooner than the ceiling it waits for.
func (g *gate) reprobe(at time.Time) {
	if g.closed && !g.probeOut && at.Before(g.probeAt) {
		g.probeAt = at
	}
}

// wait returns how long a request must wait at now before it may leave, and
// whether it leaves as the probe. A wait of 0 with probe false means open.
func (g *gate) wait(now time.Time) (d time.Duration, probe bool) {
	if !g.closed {
		return 0, false
	}
	if g.probeOut {
		if d := g.probeSent.Add(probeTimeout).Sub(now); d > 0 {
			return d, false
		}
	}
	if d := g.probeAt.Sub(now); d > 0 {
		return d, false
	}
	return 0, true
}

// sendProbe records that the probe left at now.
func (g *gate) sendProbe(now time.Time) {
	g.probeOut, g.probeSent = true, now
}

// certain returns the part of a wait at now that nothing but time passing
// can shorten: until the next probe, which may open the gate.
func (g *gate) certain(now time.Time) time.Duration {
	if !g.closed {
		return 0
	}
	return max(g.probeAt.Sub(now), 0)
}
