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
			if r := l.rate(at(2000)); math.Abs(r-before) > before/100 {
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

// The search that follows the cold start starts from what the cold start
// got through, counting successes that are answered after its refusal.
func TestLearnerColdSearchCountsLateAnswers(t *testing.T) {
	l := newLearner(at(0), 0, 0, 0)
	l.left(at(0))
	l.accepted(at(10), at(0), 1)
	l.left(at(10))
	l.left(at(10))
	l.refused(at(10), at(10), 2, false) // refusals come back at once
	if l.phase != searching {
		t.Fatalf("phase %d after the cold start's refusal, want searching", l.phase)
	}
	before := l.base
	l.accepted(at(20), at(10), 2) // the other of the last round, served
	coldSpan := 10 * time.Millisecond
	if want := 2 / (coldSpan + searchLead).Seconds(); math.Abs(l.base-want) > want/100 || l.base <= before {
		t.Errorf("search base %.2f/s (%.2f/s before the late answer), want %.2f/s", l.base, before, want)
	}
	// Once the search is refused, late answers of the cold start no
	// longer move its base.
	l.startSearch(at(30), 1)
	l.accepted(at(40), at(10), 2)
	if l.base != 1 {
		t.Errorf("base of a later search moved to %.2f/s by a cold answer", l.base)
	}
}

// refillBound: two refusals w apart with k accepted between prove a rate
// below (k+1)/w, unless the bucket could have filled up meanwhile (k+1 not
// below the burst the cold start proved).
func TestLearnerRefillBound(t *testing.T) {
	for _, tc := range []struct {
		name         string
		coldAccepted int
		coldSpan     time.Duration
		accepted     int     // sends accepted between the refusals
		w            float64 // ms between the refusals
		want         float64
	}{
		{"big burst, slow refill", 60, 6 * time.Second, 2, 2400, 3 / 2.4},
		{"nothing between", 60, 6 * time.Second, 0, 500, 1 / 0.5},
		{"bucket may have filled", 3, 10 * time.Millisecond, 2, 1000, math.Inf(1)},
		{"burst spent by its refill", 60, 6 * time.Second, 40, 2000, math.Inf(1)},
		{"too short to measure", 60, 6 * time.Second, 0, 20, math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			l.coldEnd, l.coldAccepted, l.coldSpan = at(0), tc.coldAccepted, tc.coldSpan
			prev := at(100)
			for i := range tc.accepted {
				sent := prev.Add(time.Duration(float64(i+1) / float64(tc.accepted+1) * tc.w * float64(time.Millisecond)))
				l.left(sent)
			}
			end := prev.Add(time.Duration(tc.w * float64(time.Millisecond)))
			l.left(end)
			l.sends.add(end, -1) // the refused request
			if got := l.refillBound(end, prev); math.Abs(got-tc.want) > 1e-9 && !(math.IsInf(got, 1) && math.IsInf(tc.want, 1)) {
				t.Errorf("refillBound = %v, want %v", got, tc.want)
			}
		})
	}
}

// sendLog.bestRate: n accepted sends within w of each other, at most burst
// of them from the bucket, prove a refill of n-burst in w.
func TestSendLogBestRate(t *testing.T) {
	type send struct {
		ms    float64
		state sendState
	}
	ok := func(ms ...float64) []send {
		var s []send
		for _, m := range ms {
			s = append(s, send{m, sendAccepted})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		sends []send
		end   float64 // ms: the refused send
		from  float64 // ms: the regime's start
		burst float64
		want  float64
	}{
		// A search at 5/s, burst 1: the last two accepted sends, 200ms
		// apart, needed a unit refilled between them.
		{"slow search", ok(280, 540, 740), 888, 0, 1, 1 / 0.2},
		{"burst of two", ok(280, 540, 740), 888, 0, 2, 1 / 0.46},
		{"a refusal between", append(ok(280, 540), send{640, sendRefused}, send{740, sendAccepted}), 888, 0, 1, 1 / 0.2},
		{"an answer not in yet", append(ok(280, 540), send{740, sendOut}), 888, 0, 1, 1 / 0.26},
		{"sends after the refused one", ok(280, 540, 740, 900), 888, 0, 1, 1 / 0.2},
		{"regime starts later", ok(280, 540, 740), 888, 500, 2, 0},
		{"too close to measure", ok(700, 710), 888, 0, 1, 0},
		{"none", nil, 888, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s sendLog
			for _, x := range tc.sends {
				s.add(at(x.ms))
			}
			for _, x := range tc.sends {
				if x.state != sendOut {
					s.mark(at(x.ms), x.state)
				}
			}
			got := s.bestRate(at(tc.end), at(tc.from), tc.burst, minWindow)
			if math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("bestRate = %v, want %v", got, tc.want)
			}
		})
	}
}

// A sendLog keeps the last recentCount sends: older ones fall out, and
// marking one no longer held changes nothing.
func TestSendLogWraps(t *testing.T) {
	var s sendLog
	for i := range 3 * recentCount {
		s.add(at(float64(100 * i)))
		s.mark(at(float64(100*i)), sendAccepted)
	}
	s.mark(at(0), sendRefused) // long gone
	// recentCount sends 100ms apart, burst 1: (n-1)/w = 10/s exactly.
	if got := s.bestRate(at(1e6), at(0), 1, minWindow); math.Abs(got-10) > 1e-9 {
		t.Errorf("bestRate = %v, want 10", got)
	}
}

// A hold lasts minHold, or holdRequests requests at the estimate when that
// is longer, doubled for each climb in a row that found nothing new; after
// a cut (the limit fell, or is shared now) it lasts minHold alone.
func TestLearnerHold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     float64
		quiet     int // climbs in a row that found nothing new
		cut       bool
		climbsAt  time.Duration
		holdsPast time.Duration
	}{
		{"fast limit", 100, 0, false, minHold, minHold - time.Millisecond},
		{"slow limit", 5, 0, false, 10 * time.Second, 9 * time.Second},
		{"slow limit, one quiet climb", 5, 1, false, 20 * time.Second, 19 * time.Second},
		{"slow limit, many quiet climbs", 5, 10, false, 80 * time.Second, 79 * time.Second},
		{"slow limit, cut", 5, 0, true, minHold, minHold - time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			for range tc.quiet {
				l.climbEnded(false)
			}
			if tc.cut {
				l.climbEnded(true) // as holdRefused does
			}
			l.startHold(at(0), tc.limit)
			l.cut = tc.cut
			l.advance(at(0).Add(tc.holdsPast))
			if l.phase != holding {
				t.Fatalf("climbing after %v, want holding until %v", tc.holdsPast, tc.climbsAt)
			}
			l.advance(at(0).Add(tc.climbsAt))
			if l.phase != climbing {
				t.Errorf("phase %d after %v, want climbing", l.phase, tc.climbsAt)
			}
		})
	}
}

// A climb that finds the limit moved resets the hold; a cut does too.
func TestLearnerClimbEnded(t *testing.T) {
	l := newLearner(at(0), 0, 0, 0)
	l.climbEnded(false)
	l.climbEnded(false)
	if l.hold != maxHold || l.quietClimbs != 2 {
		t.Errorf("after two quiet climbs: hold %v, quiet %d; want %v, 2", l.hold, l.quietClimbs, maxHold)
	}
	l.climbEnded(true)
	if l.hold != minHold || l.quietClimbs != 0 {
		t.Errorf("after a climb that moved: hold %v, quiet %d; want %v, 0", l.hold, l.quietClimbs, minHold)
	}
}

// The refusals of one burst come back together, each of a request that left
// a little after the one before, and before the first refusal was heard:
// they are one sign of the limit. Counting each as news cut the rate once
// per refusal, and over loopback the article's batch took 1.5x its bound.
func TestLearnerOneBurstOfRefusalsIsOneSign(t *testing.T) {
	const sent, served, rtt, gap = 32, 10, 2 * time.Millisecond, 10 * time.Microsecond
	l := newLearner(t0, 0.1, 0, 0)
	sentAt := func(i int) time.Time { return t0.Add(time.Duration(i) * gap) }
	for i := range sent {
		l.left(sentAt(i))
	}
	for i := range served {
		l.accepted(sentAt(i).Add(rtt), sentAt(i), sent-i)
	}
	type course struct {
		phase       phase
		since       time.Time
		base, limit float64
	}
	courseOf := func() course { return course{l.phase, l.phaseAt, l.base, l.limit} }
	before := courseOf()
	heard := sentAt(served).Add(rtt)
	l.refused(heard, sentAt(served), sent-served, false)
	first := courseOf()
	if first == before {
		t.Fatalf("the burst's first refusal left the learner's course as it was, %+v", first)
	}
	for i := served + 1; i < sent; i++ {
		l.refused(sentAt(i).Add(rtt), sentAt(i), sent-i, false)
		if c := courseOf(); c != first {
			t.Fatalf("refusal %d of the burst changed the learner's course from %+v to %+v", i-served+1, first, c)
		}
	}
}

// coldStart runs a learner through a cold start whose rounds of 1, 2 and 4
// requests, 10ms apart, are served, and whose round of 8 is refused at its
// top level, heard at 30ms.
func coldStart(t *testing.T) (learner, refusal) {
	t.Helper()
	l := newLearner(at(0), 0, 0, 0)
	for round, n := 0, 1; n <= 8; round, n = round+1, 2*n {
		sent := at(float64(10 * round))
		for range n {
			l.left(sent)
		}
		if n == 8 {
			return l, l.refused(sent, sent, n, false)
		}
		for i := range n {
			l.accepted(sent.Add(10*time.Millisecond), sent, i+1)
		}
	}
	panic("unreachable")
}

// The cold start's first refusal looks the same under a concurrency cap and
// under a rate. Taken for a tentative cap, it is hedged by a rate search, so
// that under a rate the gate's opening does not let a window's worth out
// into an empty bucket: over a network the retry-after batch saw 8 of 9
// refused there, and 4-6% 429s in all.
func TestLearnerColdRefusalHedged(t *testing.T) {
	l, why := coldStart(t)
	if !why.concurrency || !l.capped {
		t.Fatalf("cold refusal at the top level: %+v, capped %v; want a tentative cap", why, l.capped)
	}
	r := l.rate(at(30))
	if want := l.coldBase(); math.IsInf(r, 1) || math.Abs(r-want) > want/100 {
		t.Errorf("rate after the cold refusal = %.1f/s, want the cold start's %.1f/s", r, want)
	}

	t.Run("cap confirmed", func(t *testing.T) {
		l, _ := coldStart(t)
		n := l.window
		for i := range n {
			l.left(at(40))
			l.accepted(at(50), at(40), i+1)
		}
		l.left(at(50))
		if why := l.refused(at(51), at(50), l.window+1, false); !why.concurrency || !l.sure {
			t.Fatalf("refusal above the window: %+v, sure %v; want the cap confirmed", why, l.sure)
		}
		// Over a network a rate's refusals look the same: the search
		// that hedged the cap starts again from the lower bound on the
		// rate that this refusal proves, where it used to stop.
		if l.phase != searching || l.phaseAt != at(51) {
			t.Errorf("phase %d since %v once the cap is confirmed, want a search from 51ms", l.phase, l.phaseAt)
		}
		if r, want := l.rate(at(51)), l.estimate(at(51), at(50), at(30), l.sinceRefusal); math.IsInf(r, 1) || want <= 0 || math.Abs(r-want) > want/100 {
			t.Errorf("rate once the cap is confirmed = %.1f/s, want the bound the refusal proves, %.1f/s", r, want)
		}
	})

	t.Run("rate shown", func(t *testing.T) {
		l, _ := coldStart(t)
		for i := range 6 {
			l.accepted(at(40), at(30), i+1) // the served of the round of 8
		}
		l.left(at(40))
		l.refused(at(41), at(40), 2, false) // refused with one other out
		if l.capped || l.window != 0 {
			t.Errorf("window %d, capped %v after a refusal below the levels served; want lifted", l.window, l.capped)
		}
		if l.phase != searching || l.phaseAt != at(41) {
			t.Errorf("phase %d since %v, want a search from the refusal at 41ms", l.phase, l.phaseAt)
		}
	})
}

// capRefusal tells a concurrency cap's refusals from a rate's by the levels
// they come at: not below the levels served, and not below minCap. A
// refusal in the burst that follows a long closure is the burst's: it is no
// confirmed cap's, though it still shows a rate when its level does.
func TestLearnerCapRefusal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capped   bool // a tentative cap is inferred already
		inFlight int  // the refusal's level
		okPeak   int  // the levels served lately
		opening  bool // refused in the burst after a long closure
		want     bool // read as the cap's
		lifted   bool // the window is lifted: a rate shown
		sure     bool // the cap inferred is confirmed
	}{
		{"at the levels served", false, 9, 8, false, true, false, false},
		{"below the levels served", false, 5, 8, false, false, true, false},
		{"at a cap inferred", true, 7, 8, false, true, false, false},
		// A rate server read as a cap once (a penalty box's refusals at 3
		// of 4): the refusals that follow must not shrink the window to
		// 1 and confirm it, with no rate to hold anyone back.
		{"below minCap at a cap inferred", true, 3, 4, false, false, true, false},
		// Four clients sharing a rate: each has two or three out, and a
		// burst after the gate opens is refused at its top level.
		{"levels served below minCap", false, 8, 2, false, false, true, false},
		// A tentative cap's opening burst is hedged by the search already.
		{"opening burst at a tentative cap", true, 9, 8, true, true, false, false},
		{"opening burst at a cap confirmed", true, 9, 8, true, false, false, true},
		{"opening burst below minCap", true, 1, 4, true, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			l.coldEnd = at(0)
			l.capped, l.sure, l.window = tc.capped, tc.sure, tc.okPeak
			if got := l.capRefusal(at(100), tc.inFlight, tc.okPeak, false, tc.opening); got != tc.want {
				t.Errorf("capRefusal(level %d, served %d) = %v, want %v", tc.inFlight, tc.okPeak, got, tc.want)
			}
			if lifted := !l.capped && l.window == 0; lifted != tc.lifted {
				t.Errorf("window %d, capped %v after the refusal; want lifted %v", l.window, l.capped, tc.lifted)
			}
		})
	}
}

// The search that hedged the cold start's refusal, refused, starts again
// from the ceiling the two refusals prove when that is below the cold
// start's rate: a burst of 60 refilled at 1/s got the cold start to 60 in
// 6s, and a search from 9.9/s cost a burst of refusals.
func TestLearnerHedgeRestartsBelowCeiling(t *testing.T) {
	l := newLearner(at(0), 0, 0, 0)
	l.coldAccepted, l.coldSpan, l.coldEnd = 66, 6400*time.Millisecond, at(6400)
	l.searchFromCold(at(6400))
	l.searched = false // the hedge, as capRefusal starts it
	l.searchRefused(at(8700), at(8700), at(6400), 9.9, 0, 1.5)
	if l.phase != searching || l.base != 1.5 {
		t.Errorf("phase %d from %.2f/s, want a search from the ceiling, 1.5/s", l.phase, l.base)
	}
}

// A refusal in the burst that follows the gate's opening after a long
// closure is the burst's: the bucket held less than the window let out at
// once. Over a network the penalty box's refusals came so, at the window's
// level, and read as a cap's they shrank the window by one per penalty while
// the rate, never refused, stayed above the server's.
func TestLearnerOpeningBurstIsNoCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sent      float64 // ms; the gate opened at 2000 after 2s closed
		wantCap   bool
		wantBurst float64 // the burst estimate after the refusal
	}{
		{"in the opening burst", 2040, false, 9},
		{"past it", 2100, true, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			l.coldEnd, l.coldAccepted, l.burst, l.maxBurst = at(0), 12, 12, 12
			l.rateSeen = false
			l.capped, l.sure, l.window, l.windowAt = true, true, 9, at(0)
			l.startHold(at(0), 130)
			l.reopened(at(2000), 2*time.Second)
			for i := range 8 { // the window's worth, served
				l.left(at(2000))
				l.accepted(at(2040), at(2000), i+1)
			}
			l.left(at(tc.sent))
			why := l.refused(at(tc.sent+30), at(tc.sent), 9, false)
			if why.concurrency != tc.wantCap {
				t.Errorf("refusal at the window's level, %vms after the opening: concurrency %v, want %v", tc.sent-2000, why.concurrency, tc.wantCap)
			}
			if l.burst != tc.wantBurst {
				t.Errorf("burst %v after the refusal, want %v", l.burst, tc.wantBurst)
			}
		})
	}
}

// When refusals are costly (a penalty box suspends for 2s), the refusal
// that ends the search hedging the cold start's keeps what that search
// measured: a new search from the cold start's rate ended in one more
// suspension, and the penalty box took 1.76x its bound from the first
// refusal on. Refusals that cost less than a second search again, as
// before.
func TestLearnerCostlyHedgeKeepsEstimate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		closure time.Duration // how long the cold start's refusal closed the gate
		want    phase
	}{
		{"costly", 2 * time.Second, holding},
		{"cheap", 500 * time.Millisecond, searching},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := coldStart(t)
			for i := range 6 {
				l.accepted(at(40), at(30), i+1) // the served of the round of 8
			}
			l.closed()
			opened := 30 + float64(tc.closure/time.Millisecond)
			l.reopened(at(opened), tc.closure)
			// The hedge, served at 100/s with one request out at a time.
			for ms := opened; ms < opened+370; ms += 10 {
				l.left(at(ms))
				l.accepted(at(ms+10), at(ms), 1)
			}
			end := at(opened + 370)
			est := l.estimate(end, end, at(30), l.sinceRefusal)
			l.left(end)
			if est <= l.coldBase() {
				t.Fatalf("the hedge measured %.1f/s, not above the cold start's %.1f/s: nothing to keep", est, l.coldBase())
			}
			l.refused(end, end, 2, false)
			if l.phase != tc.want {
				t.Fatalf("phase %d after the hedge's refusal, want %d", l.phase, tc.want)
			}
			switch tc.want {
			case holding:
				if math.Abs(l.limit-est) > est/100 {
					t.Errorf("holding at an estimate of %.1f/s, want the hedge's %.1f/s", l.limit, est)
				}
			case searching:
				if want := l.coldBase(); math.Abs(l.base-want) > want/100 {
					t.Errorf("searching from %.1f/s, want the cold start's %.1f/s", l.base, want)
				}
			}
		})
	}
}

// A search slows down by costlySlowdown when refusals cost a second or
// more: the refusal that ends it costs as much at any overshoot, and a
// slower search is refused nearer the limit. Against the penalty box (100/s)
// the hedge's refusal measured 82/s at full speed, 90/s slowed.
func TestLearnerCostlySearchSlows(t *testing.T) {
	for _, tc := range []struct {
		name string
		cost time.Duration
		want float64
	}{
		{"costly", 2 * time.Second, searchRate(50, 300*time.Millisecond/costlySlowdown)},
		{"cheap", 50 * time.Millisecond, searchRate(50, 300*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			l.closed()
			l.reopened(at(0), tc.cost)
			l.startSearch(at(0), 50)
			if r := l.rate(at(300)); math.Abs(r-tc.want) > tc.want/100 {
				t.Errorf("rate 300ms into the search = %.1f/s, want %.1f/s", r, tc.want)
			}
		})
	}
}

// The cold start's burst is what it got through until the request its first
// refusal answered left: the successes answered before that refusal, and
// the requests still out then that the server later served. A refusal
// answered after the first takes back one of those counted as out, never
// one that was answered: at one instant 10 were served and the other 6
// refused, and each late refusal took one off a burst of 10, down to 5 (or
// to 1, when the window let out more); rates measured over windows then
// counted 9 units of the bucket as refill, and TestPaceLearnsUnknownRate
// held 106/s against a limit of 100 and failed about 1 run in 30. A success
// answered late counted once more a request counted as out already, and
// one of a request that left after the refused one took refill, not burst.
func TestLearnerColdBurst(t *testing.T) {
	for _, tc := range []struct {
		name string
		// Requests that left and were served, with the time (ms) of
		// their answers, then the refusals.
		served, servedAt []float64
		refused          []float64 // sent, and answered at once
		heardAt          float64   // when the first refusal was heard
		want             float64
	}{
		{
			name:     "at one instant",
			served:   []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			servedAt: []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			refused:  []float64{0, 0, 0, 0, 0, 0},
			want:     10,
		},
		{
			// Slow answers: the 4 sent at 0ms are out when the first
			// refusal is heard, and counted; one of them is refused
			// after it, the other 3 served.
			name:     "slow answers",
			served:   []float64{0, 0, 0},
			servedAt: []float64{500, 500, 500},
			refused:  []float64{100, 0},
			heardAt:  100,
			want:     3,
		},
		{
			name: "left after the refused one",
			// Over a network: the refusal of the request sent at 40ms
			// is heard at 70ms, after the one sent at 50ms left.
			served:   []float64{0, 0, 0, 0, 0, 50},
			servedAt: []float64{30, 30, 30, 30, 30, 90},
			refused:  []float64{40},
			heardAt:  70,
			want:     5,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLearner(at(0), 0, 0, 0)
			for _, s := range tc.served {
				l.left(at(s))
			}
			for _, s := range tc.refused {
				l.left(at(s))
			}
			for i, s := range tc.served {
				if tc.servedAt[i] <= tc.heardAt {
					l.accepted(at(tc.servedAt[i]), at(s), 1)
				}
			}
			for i, s := range tc.refused {
				l.refused(at(max(s, tc.heardAt)+float64(i)/1000), at(s), 1, false)
			}
			for i, s := range tc.served {
				if tc.servedAt[i] > tc.heardAt {
					l.accepted(at(tc.servedAt[i]), at(s), 1)
				}
			}
			if l.maxBurst != tc.want {
				t.Errorf("cold start's burst = %v, want %v", l.maxBurst, tc.want)
			}
		})
	}
}
