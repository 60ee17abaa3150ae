package pacehttp

import (
	"testing"
	"time"
)

// A slot keeps how far into it its latest send left, so that the sends
// counted since a time leave their slot as they left it, not as it ends;
// its count saturates rather than wrap into that mark.
func TestSlotRingSince(t *testing.T) {
	var s slotRing
	for _, ms := range []float64{0, 4, 25, 30, 31} {
		s.add(at(ms), 1)
	}
	s.add(at(30), -1) // refused: the mark stays, conservatively
	for _, tc := range []struct {
		since float64
		want  int
	}{
		{since: -1, want: 4},
		{since: 3, want: 4},  // the slot's latest send, at 4ms, is still inside
		{since: 5, want: 2},  // both of the first slot gone
		{since: 29, want: 2}, // its latest (31ms) counts the whole second slot
		{since: 32.5, want: 0},
	} {
		if n, ok := s.since(at(tc.since), at(40)); !ok || n != tc.want {
			t.Errorf("since %vms: %d (%v), want %d", tc.since, n, ok, tc.want)
		}
	}
	for range maxSlotCount + 10 {
		s.add(at(45), 1)
	}
	if n, _ := s.count(at(39), at(45)); n != maxSlotCount {
		t.Errorf("a slot of %d sends counts %d, want it saturated at %d", maxSlotCount+10, n, maxSlotCount)
	}
	if end := s.counts[slotOf(at(45))%slotCount].end(); end < 5*time.Millisecond || end > 5*time.Millisecond+slotWidth/slotTicks {
		t.Errorf("latest send of the slot marked %v into it, want 5ms", end)
	}
}
