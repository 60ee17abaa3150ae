package pacehttp

import "time"

// A slotRing counts the sends that were not refused, by the time they
// left, in slots of slotWidth, over the last slotCount slots.
type slotRing struct {
	counts [slotCount]slotCount16
	last   int64 // absolute index of the newest slot; 0 before the first
}

// A slotCount16 is one slot of a slotRing: the count of its sends, which
// saturates at maxSlotCount, and how far into the slot the latest of them
// left, in sixteenths of it, so that what a send takes from a window's
// quota is known to return a period after that send, not after the slot
// ends (see quotaWindow.wait): a quota replayed from whole slots would
// return a slot late every period.
type slotCount16 uint16

const (
	maxSlotCount = 1<<12 - 1 // the low 12 bits
	slotTicks    = 16        // the high 4 bits count sixteenths of a slot
)

func (c slotCount16) n() int { return int(c & maxSlotCount) }

// end returns how long after the slot's start its latest send had left.
func (c slotCount16) end() time.Duration {
	return time.Duration(int64(c>>12)+1) * slotWidth / slotTicks
}

func slotOf(t time.Time) int64 { return t.UnixNano() / int64(slotWidth) }

// add adds d to the count of the slot of t, if the ring still holds it.
func (s *slotRing) add(t time.Time, d int) {
	i := slotOf(t)
	if i > s.last {
		for j := max(s.last+1, i-slotCount+1); j <= i; j++ {
			s.counts[j%slotCount] = 0
		}
		s.last = i
	}
	if i <= s.last-slotCount {
		return // older than the ring
	}
	c := &s.counts[i%slotCount]
	tick := *c >> 12
	if d > 0 {
		tick = max(tick, slotCount16(t.UnixNano()%int64(slotWidth)*slotTicks/int64(slotWidth)))
	}
	*c = tick<<12 | slotCount16(min(max(c.n()+d, 0), maxSlotCount))
}

// count returns the sends counted in the slots after the one of from, up to
// the one of to, and whether the ring still holds them all.
func (s *slotRing) count(from, to time.Time) (int, bool) {
	a, b := slotOf(from), min(slotOf(to), s.last)
	if s.last == 0 || a <= s.last-slotCount {
		return 0, false
	}
	n := 0
	for i := a + 1; i <= b; i++ {
		n += s.counts[i%slotCount].n()
	}
	return n, true
}

// bestRate returns max over windows ending at end of (k-burst)/w, for the k
// sends accepted in a window of w seconds that starts no earlier than from.
func (s *slotRing) bestRate(end time.Time, burst float64, from time.Time) float64 {
	e := slotOf(end)
	if s.last == 0 || e > s.last+slotCount {
		return 0
	}
	first := max(slotOf(from), e-slotCount+1, s.last-slotCount+1)
	best, k := 0.0, 0
	for i := min(e, s.last); i >= first; i-- {
		k += s.counts[i%slotCount].n()
		w := end.Sub(slotStart(i))
		if w < minWindow || k < minEstimateCount {
			continue
		}
		best = max(best, (float64(k)-burst)/w.Seconds())
	}
	return best
}

// rate returns the accepted sends per second over the span before end.
func (s *slotRing) rate(end time.Time, span time.Duration) float64 {
	if s.last == 0 {
		return 0
	}
	e := min(slotOf(end), s.last)
	n := min(int64(span/slotWidth), slotCount)
	k := 0
	for i := e; i > e-n && i > s.last-slotCount; i-- {
		k += s.counts[i%slotCount].n()
	}
	return float64(k) / span.Seconds()
}

// recentCount is how many sends a sendLog keeps.
const recentCount = 6

// A sendLog keeps the times of the last recentCount sends and what became
// of them. At slow rates the slot ring's counts are too small to measure a
// rate by (a count off by one is a rate off by half), while exact times of
// a few sends bound it tightly.
type sendLog struct {
	at    [recentCount]int64 // send times, Unix nanoseconds; 0 for none
	state [recentCount]sendState
	next  uint8 // where the next send goes
}

type sendState uint8

const (
	sendOut      sendState = iota // not answered yet
	sendAccepted                  // served
	sendRefused                   // refused, or not served
)

// add records a send at t.
func (s *sendLog) add(t time.Time) {
	s.at[s.next], s.state[s.next] = t.UnixNano(), sendOut
	s.next = (s.next + 1) % recentCount
}

// mark records what became of the send at t, if the log still holds it.
func (s *sendLog) mark(t time.Time, st sendState) {
	at := t.UnixNano()
	for i := range recentCount {
		j := (int(s.next) - 1 - i + 2*recentCount) % recentCount
		if s.at[j] == at && s.state[j] == sendOut {
			s.state[j] = st
			return
		}
	}
}

// bestRate returns the best lower bound on a token bucket's rate that the
// accepted sends before end and from from on prove, given that the bucket
// held at most burst when the first of them left: n accepted sends that
// left within w of each other took n units, at most burst of them on hand,
// so the bucket refilled at least n-burst of them in w. Spans shorter than
// minSpan are not measured.
func (s *sendLog) bestRate(end, from time.Time, burst float64, minSpan time.Duration) float64 {
	e, f := end.UnixNano(), from.UnixNano()
	last := int64(0) // the latest accepted send before end
	n, best := 0, 0.0
	for i := range recentCount {
		j := (int(s.next) - 1 - i + 2*recentCount) % recentCount
		at := s.at[j]
		if at == 0 || at < f {
			break
		}
		if at >= e || s.state[j] != sendAccepted {
			continue
		}
		if last == 0 {
			last = at
		}
		n++
		if w := time.Duration(last - at); w >= minSpan {
			best = max(best, (float64(n)-burst)/w.Seconds())
		}
	}
	return best
}

// since returns the sends counted after since up to to, as far as the
// slots tell: a slot counts whole unless its latest send left by since. It
// reports false when the ring no longer holds those slots.
func (s *slotRing) since(since, to time.Time) (int, bool) {
	a, b := slotOf(since), min(slotOf(to), s.last)
	if s.last == 0 || a <= s.last-slotCount {
		return 0, false
	}
	n := 0
	for i := a; i <= b; i++ {
		if c := s.counts[i%slotCount]; i > a || slotStart(i).Add(c.end()).After(since) {
			n += c.n()
		}
	}
	return n, true
}

// leaving returns, when the sends counted after since up to to (see
// slotRing.since) are limit or more, the time the latest send of the slot
// with whose departure they would be fewer had left; the zero time when they
// are fewer already. It reports false when the ring no longer holds them.
func (s *slotRing) leaving(since, to time.Time, limit int) (time.Time, bool) {
	n, ok := s.since(since, to)
	if !ok || n < limit {
		return time.Time{}, ok
	}
	a, b := slotOf(since), min(slotOf(to), s.last)
	for i := a; i <= b; i++ {
		c := s.counts[i%slotCount]
		end := slotStart(i).Add(c.end())
		if i == a && !end.After(since) {
			continue
		}
		if n -= c.n(); n < limit {
			return end, true
		}
	}
	return slotStart(b + 1), true
}

func slotStart(i int64) time.Time { return time.Unix(0, i*int64(slotWidth)) }
