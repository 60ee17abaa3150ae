package pacehttp

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus ms milliseconds.
func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// A search or a climb advances only while the rate holds requests back; a
// budget wait that spans a cool-down is the gate's, and must not let the
// search run on while nothing is sent.
func TestLearnerClockStopsWhileGateClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(l *learner, now time.Time)
	}{
		{"searching", func(l *learner, now time.Time) { l.startSearch(now, 50) }},
		{"climbing", func(l *learner, now time.Time) {
			l.startHold(now, 50)
			l.phase, l.phaseAt = climbing, now
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			tc.start(&l, at(0))
			before := l.rate(at(0))
			l.closed()
			l.bound(at(2000)) // a reservation that waits out the cool-down
			l.reopened(at(2000), 2*time.Second)
			l.advance(at(2000))
			if r := l.rate(at(2000)); r > 1.01*before {
				t.Errorf("rate after a 2s closure = %.1f, want about %.1f, as before it", r, before)
			}
		})
	}
}

// The search's clock still runs while the rate holds requests back.
func TestLearnerClockRunsWhileBound(t *testing.T) {
	l := newLearner(at(0), 0, 0, 0)
	l.startSearch(at(0), 50)
	for ms := 10.0; ms <= 300; ms += 10 {
		l.bound(at(ms + 10))
		l.advance(at(ms))
	}
	if r, want := l.rate(at(300)), searchRate(50, 300*time.Millisecond); math.Abs(r-want) > want/100 {
		t.Errorf("rate after 300ms bound = %.1f, want %.1f", r, want)
	}
}
