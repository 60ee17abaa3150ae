package pacehttp

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// spend records n accepted sends spread evenly over [from, to] ms.
func spend(s *slotRing, n int, from, to float64) {
	for i := range n {
		t := from
		if n > 1 {
			t += (to - from) * float64(i) / float64(n-1)
		}
		s.add(at(t), 1)
	}
}

// After a burst refused soon after it began, a refused refill probe starts
// the search: the gate probes at the round periods after the burst began,
// within the server's ceiling, and a probe served at one of them proves it,
// with the burst's count for the quota.
func TestQuotaWindowSearch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cold         bool    // the burst is the cold start's
		burst        int     // accepted from 0 to span
		span         float64 // ms; the refusal that closes the gate leaves then
		period       float64 // ms: a probe this long after 0 or more is served
		wantProbes   []float64
		wantState    windowState
		wantQuota    int32
		wantPeriodMs float64
	}{
		{name: "fixed 50 per 500ms", burst: 50, span: 50, period: 500,
			wantProbes: []float64{101, 201, 501}, wantState: windowReplay, wantQuota: 50, wantPeriodMs: 500},
		{name: "sliding 100 per 1s", burst: 100, span: 70, period: 1000,
			wantProbes: []float64{101, 201, 501, 1001}, wantState: windowReplay, wantQuota: 100, wantPeriodMs: 1000},
		{name: "burst too small", burst: minWindowQuota - 1, span: 20, period: 500, wantState: noWindow},
		{name: "burst spent slowly", burst: 50, span: 300, period: 1000, wantState: noWindow},
		// Over a long round trip the cold start takes a while to spend
		// the quota, however fast it sends.
		{name: "cold start spent slowly", cold: true, burst: 50, span: 300, period: 1000,
			wantProbes: []float64{501, 1001}, wantState: windowReplay, wantQuota: 50, wantPeriodMs: 1000},
		{name: "period past the ceiling", burst: 50, span: 50, period: 3000,
			wantProbes: []float64{101, 201, 501, 1001}, wantState: noWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s slotRing
			w := quotaWindow{anchor: at(0).UnixNano(), cold: tc.cold}
			spend(&s, tc.burst, 0, tc.span)
			closedAt := at(tc.span)
			until := closedAt.Add(time.Second + ceilingMargin)
			if next := w.refused(closedAt, closedAt, until, false, &s); !next.IsZero() {
				t.Fatalf("the closing refusal moved the probe to %v", next.Sub(at(0)))
			}
			var probes []float64
			probe := closedAt.Add(6 * time.Millisecond) // the refill probe
			for range 10 {
				s.add(probe, 1)
				if d := probe.Sub(at(0)); d >= time.Duration(tc.period*float64(time.Millisecond)) {
					w.opened(probe, &s)
					break
				}
				s.add(probe, -1)
				next := w.refused(probe, closedAt, until, true, &s)
				if next.IsZero() {
					break
				}
				probes = append(probes, float64(next.Sub(at(0)))/float64(time.Millisecond))
				probe = next
			}
			if diff := cmp.Diff(tc.wantProbes, probes); diff != "" {
				t.Errorf("probes (ms after the burst began) (-want +got):\n%s", diff)
			}
			if w.state != tc.wantState {
				t.Errorf("state %d, want %d", w.state, tc.wantState)
			}
			if tc.wantState == windowReplay {
				if w.quota != tc.wantQuota || w.period() != time.Duration(tc.wantPeriodMs*float64(time.Millisecond)) {
					t.Errorf("quota %d per %v, want %d per %vms", w.quota, w.period(), tc.wantQuota, tc.wantPeriodMs)
				}
			}
		})
	}
}

// replaying returns a window replaying quota per period (an index of
// windowPeriods) from a burst that began at 0.
func replaying(quota int32, period time.Duration) quotaWindow {
	w := quotaWindow{state: windowReplay, quota: quota, anchor: at(0).UnixNano()}
	for windowPeriods[w.candidate] != period {
		w.candidate++
	}
	return w
}

// While replaying, a request waits until enough of the sends of the last
// period have been a period gone: each send's share returns a period after
// it left, give or take a sixteenth of a slot, not a slot late.
func TestQuotaWindowWait(t *testing.T) {
	const period = 100 * time.Millisecond
	for _, tc := range []struct {
		name    string
		sends   []float64 // ms
		now     float64
		wantEnd float64 // ms the wait should end at; 0 for none
	}{
		{name: "room", sends: []float64{0, 5, 30}, now: 31},
		{name: "full", sends: []float64{0, 5, 30, 30}, now: 31, wantEnd: 5 + 100},
		{name: "room again a period after", sends: []float64{0, 5, 30, 30, 60}, now: 108},
		{name: "full, the first slot gone", sends: []float64{0, 5, 30, 30, 60, 70}, now: 108, wantEnd: 30 + 100},
		{name: "a period later, all back", sends: []float64{0, 5, 30, 30}, now: 132},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s slotRing
			for _, ms := range tc.sends {
				s.add(at(ms), 1)
			}
			w := replaying(4, period)
			d := w.wait(at(tc.now), &s)
			if tc.wantEnd == 0 {
				if d != 0 {
					t.Errorf("wait %v, want none", d)
				}
				return
			}
			end := at(tc.now).Add(d)
			lo := at(tc.wantEnd).Add(windowMargin)
			if end.Before(lo) || end.After(lo.Add(slotWidth/slotTicks)) {
				t.Errorf("wait ends at %v, want within a sixteenth of a slot after %v", end.Sub(at(0)), lo.Sub(at(0)))
			}
		})
	}
	var s slotRing
	spend(&s, 10, 0, 10)
	if w := (quotaWindow{state: windowSearch}); w.wait(at(20), &s) != 0 {
		t.Error("a window not replaying holds requests")
	}
}

// A refusal while replaying says the model is off: the quota is smaller
// when nearly all of it was counted in the period before; the period is
// longer when much less was, and the search goes on at the next candidate;
// a bucket's refusal, with few counted, refutes the model.
func TestQuotaWindowRefusedWhileReplaying(t *testing.T) {
	const period = 500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		counted   int // sends in the period before the refusal at 400ms
		wantState windowState
		wantQuota int32
		wantProbe float64 // ms; 0 for none
	}{
		{name: "quota smaller", counted: 46, wantState: windowReplay, wantQuota: 46, wantProbe: 0 + 500},
		{name: "period longer", counted: 30, wantState: windowSearch, wantQuota: 50, wantProbe: 1000},
		{name: "a bucket", counted: minWindowQuota - 1, wantState: windowRefuted, wantQuota: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s slotRing
			spend(&s, tc.counted, 0, 10)
			w := replaying(50, period)
			next := w.refused(at(400), at(400), at(1400), false, &s)
			if w.state != tc.wantState || w.quota != tc.wantQuota {
				t.Errorf("state %d, quota %d; want %d, %d", w.state, w.quota, tc.wantState, tc.wantQuota)
			}
			switch {
			case tc.wantProbe == 0 && !next.IsZero():
				t.Errorf("probe moved to %v, want it left to the gate", next.Sub(at(0)))
			case tc.wantProbe > 0 && (next.Before(at(tc.wantProbe)) || next.After(at(tc.wantProbe).Add(slotWidth))):
				t.Errorf("probe at %v, want just after %vms", next.Sub(at(0)), tc.wantProbe)
			}
		})
	}
}

// A probe served at a delay that is no candidate's ends the search without
// a window: the gate waited its ceiling, and what opened it says nothing of
// a period.
func TestQuotaWindowServedLate(t *testing.T) {
	var s slotRing
	spend(&s, 50, 0, 50)
	w := quotaWindow{state: windowSearch, candidate: 5, anchor: at(0).UnixNano()} // 500ms
	s.add(at(1060), 1)
	w.opened(at(1060), &s)
	if w.state != noWindow || w.anchor != at(1060).UnixNano() {
		t.Errorf("state %d, anchor %v; want no window, anchored at the opening", w.state, time.Unix(0, w.anchor).Sub(at(0)))
	}
}

// Through windows whose Retry-After (whole seconds) says nothing of their
// period, the pacer finds the period and sends each window's quota as it
// returns: a fixed window of 50 per 500ms is not left idle every other
// period (it took 2.2x its bound, 7.8s, waiting the whole second), and a
// sliding one of 100 per second sees no more refusals after the first.
func TestPaceWindows(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         pacetest.Config
		bound       time.Duration // all but the last window's quota a period apart
		maxRefusals int
	}{
		{name: "fixed", cfg: pacetest.Config{Window: 500 * time.Millisecond, Quota: 50, Latency: 10 * time.Millisecond},
			bound: 7*500*time.Millisecond + 20*time.Millisecond, maxRefusals: 12},
		{name: "sliding", cfg: pacetest.Config{Window: time.Second, Quota: 100, Sliding: true, Latency: 10 * time.Millisecond},
			bound: 3*time.Second + 40*time.Millisecond, maxRefusals: 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := pacetest.NewAPI(tc.cfg)
				elapsed, _ := batch(t, Pace()(api.Transport()), 400, 32)
				if max := tc.bound * 105 / 100; elapsed > max {
					t.Errorf("400 requests took %v, want at most %v (the bound %v)", elapsed, max, tc.bound)
				}
				// The cold start's last round may meet a refusal each; after
				// it, only the search's probes.
				var late int
				for _, a := range api.Answers() {
					if a.Status == 429 && a.Time.Sub(api.Start()) > 200*time.Millisecond {
						late++
					}
				}
				if late > 4 {
					t.Errorf("%d refusals after the cold start, want at most the search's 4", late)
				}
			})
		})
	}
}
