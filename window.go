package pacehttp

import "time"

// Tuning of the window model; see quotaWindow.
const (
	// minWindowQuota is the fewest requests a burst must have got through
	// before it was refused for the refusal to suggest a window's quota: a
	// smaller burst is a small bucket's, no different from a rate's.
	minWindowQuota = minSpentBurst

	// windowMargin is added to the time a quota returns: a request that
	// leaves just as the server's clock turns may find it unturned.
	windowMargin = time.Millisecond

	// quotaSlack: a refusal met with at least this share of the quota
	// counted in the period before it says the quota is a little smaller;
	// with fewer, that the period is longer than thought.
	quotaSlack = 7.0 / 8
)

// windowPeriods are the periods a window model tries, shortest first:
// windows are configured in round durations. The longest is bounded by what
// the learner's slot ring remembers.
var windowPeriods = [...]time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second,
}

// A windowState is what the window model makes of the server so far.
type windowState uint8

const (
	// noWindow: no sign of a window; the learner's rate paces alone.
	noWindow windowState = iota
	// windowSearch: a burst was refused and nothing came back at the
	// refill time: the gate probes at the candidate periods.
	windowSearch
	// windowReplay: the quota came back a period after the burst that
	// spent it; requests leave as it returns.
	windowReplay
	// windowRefuted: a quota found was refused soon: a bucket's, not a
	// window's. The model stays out of the way.
	windowRefuted
)

// A quotaWindow is the pacer's model of a limit that is a quota per period,
// a fixed window (so many requests per second, the count reset as the
// second turns) or a sliding one (so many in any second), as opposed to a
// token bucket that refills a unit at a time.
//
// The two look alike at first: a burst gets through, then the server
// refuses, with a Retry-After in whole seconds that says little when the
// period is shorter. They differ in what comes back: a bucket returns a
// unit every refill time, a window nothing until its period has passed
// since the burst began, then the whole quota (a fixed window, if the burst
// began as it turned) or the burst's requests in the order they left (a
// sliding one). So a refused probe at the refill time, after a burst of at
// least minWindowQuota (the cold start's, or one spent within spentWithin of
// an opening), is the sign of a window; the gate then probes at
// the round periods after the burst began (windowPeriods), shortest first,
// within the server's ceiling, instead of idling the whole ceiling. A
// probe served at one of them gives the period; the quota is what the
// burst got through.
//
// From then on requests leave as the quota returns: at most the quota in
// any period, counted on the learner's ring of accepted sends, the slot of
// a send returning a period after the slot ends. That holds a sliding
// window exactly, and a fixed one too, whose count in its current period is
// never more than the count in the last period; a burst that began as a
// fixed window turned replays a period later, as the window turns again.
// The learner's rate holds nobody back meanwhile.
//
// A refusal while replaying says the model is off: with nearly the quota
// counted in the period before it (quotaSlack), the quota is smaller than
// the burst suggested; with much less, the period is longer, and the search
// goes on from it. A refusal with fewer than minWindowQuota counted is a
// bucket's, and refutes the model for good.
//
// A quotaWindow is guarded by its partition's mutex; times are passed in.
type quotaWindow struct {
	state windowState
	// cold: the burst now spending the quota is the cold start's, which
	// sends as fast as its answers come back, however long that takes.
	cold bool
	// candidate indexes windowPeriods: the period replayed, or the next
	// the search probes at.
	candidate uint8
	quota     int32 // requests per period, once replaying
	// anchor is when the burst now spending the quota began (Unix
	// nanoseconds): the partition's first send, then each opening of the
	// gate.
	anchor int64
}

// replaying reports whether requests leave as the quota returns.
func (w *quotaWindow) replaying() bool { return w.state == windowReplay }

// opened records that the gate opened, by a request that left at sent:
// a new burst begins there. A probe served at the candidate period the
// search probed proves it, with the quota that the burst before got through
// (sends counts the accepted sends).
func (w *quotaWindow) opened(sent time.Time, sends *slotRing) {
	if w.state == windowSearch {
		w.state = noWindow
		p, d := w.period(), sent.Sub(w.anchorTime())
		if d >= p && d < p+p/2 {
			// The burst's accepted sends, the probe's excepted.
			n, ok := sends.count(w.anchorTime().Add(-slotWidth), sent)
			if n--; ok && n >= minWindowQuota {
				w.state, w.quota = windowReplay, int32(n)
			}
		}
	}
	w.anchor, w.cold = sent.UnixNano(), false
}

// refused records the refusal of a request that left at sent (probe, if it
// was the gate's probe), the gate now closed until until, after it closed at
// closedAt. It returns when the gate's next probe should leave, if sooner
// than the gate would send it; the zero time leaves the gate to itself.
func (w *quotaWindow) refused(sent, closedAt, until time.Time, probe bool, sends *slotRing) time.Time {
	switch w.state {
	case noWindow:
		// The refill probe refused, after a burst spent at once, by the
		// cold start or soon after an opening: nothing came back.
		if !probe || !w.cold && closedAt.Sub(w.anchorTime()) >= spentWithin {
			return time.Time{}
		}
		if n, ok := sends.count(w.anchorTime().Add(-slotWidth), sent); !ok || n < minWindowQuota {
			return time.Time{}
		}
		w.state, w.candidate = windowSearch, 0
	case windowSearch:
		if !probe {
			return time.Time{} // a straggler of the refusal that began it
		}
	case windowReplay:
		n, _ := sends.since(sent.Add(-w.period()-windowMargin), sent)
		switch {
		case n < minWindowQuota:
			w.state = windowRefuted
			return time.Time{}
		case float64(n) >= quotaSlack*float64(w.quota):
			w.quota = int32(n)
			return sent.Add(w.wait(sent, sends))
		}
		// The period is longer: search on past it, from the burst that
		// spent the quota.
		w.state = windowSearch
		w.candidate++
	default:
		return time.Time{}
	}
	// The candidates up to the delay of this refusal were too soon.
	d := sent.Sub(w.anchorTime())
	for int(w.candidate) < len(windowPeriods) && windowPeriods[w.candidate] <= d {
		w.candidate++
	}
	if int(w.candidate) < len(windowPeriods) {
		if at := w.anchorTime().Add(w.period() + windowMargin); at.Before(until) {
			return at
		}
	}
	// No candidate before the ceiling: the gate waits it, and the probe
	// that opens it starts afresh.
	w.state = noWindow
	return time.Time{}
}

// wait returns how long a request must wait at now for the quota to
// return, while replaying: until enough of the sends counted in the last
// period have left it.
func (w *quotaWindow) wait(now time.Time, sends *slotRing) time.Duration {
	if w.state != windowReplay {
		return 0
	}
	p := w.period()
	end, ok := sends.leaving(now.Add(-p-windowMargin), now, int(w.quota))
	if !ok || end.IsZero() {
		return 0
	}
	return max(end.Add(p+windowMargin).Sub(now), 0)
}

// period returns the candidate period.
func (w *quotaWindow) period() time.Duration {
	return windowPeriods[min(int(w.candidate), len(windowPeriods)-1)]
}

func (w *quotaWindow) anchorTime() time.Time { return time.Unix(0, w.anchor) }
