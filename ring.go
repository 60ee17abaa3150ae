package pacehttp

import (
	"math"
	"time"
)

// A slotRing counts the sends that were not refused, by the time they
// left, in slots of slotWidth, over the last slotCount slots.
type slotRing struct {
	counts [slotCount]uint16
	last   int64 // absolute index of the newest slot; 0 before the first
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
	*c = uint16(min(max(int(*c)+d, 0), math.MaxUint16))
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
		n += int(s.counts[i%slotCount])
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
		k += int(s.counts[i%slotCount])
		w := end.Sub(time.Unix(0, i*int64(slotWidth)))
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
		k += int(s.counts[i%slotCount])
	}
	return float64(k) / span.Seconds()
}
