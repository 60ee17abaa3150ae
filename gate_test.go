package pacehttp

import (
	"testing"
	"time"
)

// An early first probe moves sooner when the refill time is estimated
// anew; a probe that waits for the server's whole ceiling (a meant hint, a
// spent burst), or one after a refused probe, never does.
func TestGateHasten(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ceiling, early time.Duration
		probeRefused   bool
		probeOut       bool
		to             float64 // ms after the closing
		moved          bool
	}{
		{name: "early probe", ceiling: time.Second, early: 260 * time.Millisecond, to: 130, moved: true},
		{name: "not later", ceiling: time.Second, early: 260 * time.Millisecond, to: 400},
		{name: "probe at the ceiling", ceiling: 2 * time.Second, early: 2 * time.Second, to: 130},
		{name: "after a refused probe", ceiling: time.Second, early: 260 * time.Millisecond, probeRefused: true, to: 130},
		{name: "probe out", ceiling: time.Second, early: 260 * time.Millisecond, probeOut: true, to: 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g gate
			if !g.shut(at(0), at(0), false, tc.ceiling, tc.early) {
				t.Fatal("gate did not close")
			}
			if tc.probeRefused {
				g.sendProbe(at(260))
				g.shut(at(260), at(260), true, tc.ceiling, tc.early)
			}
			if tc.probeOut {
				g.sendProbe(at(260))
			}
			before := g.probeAt
			if moved := g.hasten(at(tc.to)); moved != tc.moved {
				t.Errorf("hasten moved %v, want %v", moved, tc.moved)
			}
			if want := before; tc.moved {
				if want = at(tc.to); !g.probeAt.Equal(want) {
					t.Errorf("probe at %v, want %v", g.probeAt.Sub(at(0)), want.Sub(at(0)))
				}
			} else if !g.probeAt.Equal(want) {
				t.Errorf("probe moved to %v, want it at %v", g.probeAt.Sub(at(0)), want.Sub(at(0)))
			}
		})
	}
}

// After a refused probe the next waits for the ceiling, unless the
// partition expects the server back sooner: reprobe moves it earlier, never
// later, and not while a probe is out. The certain part of a wait follows
// the probe.
func TestGateReprobe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		probeOut bool
		to       float64 // ms after the closing
		want     float64 // ms: where the probe goes
	}{
		{name: "sooner", to: 500, want: 500},
		{name: "not later", to: 1500, want: 1260},
		{name: "probe out", probeOut: true, to: 500, want: 1260},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g gate
			g.shut(at(0), at(0), false, time.Second, 10*time.Millisecond)
			g.sendProbe(at(260))
			g.shut(at(260), at(260), true, time.Second, 10*time.Millisecond)
			g.probeAt, g.until = at(1260), at(1260) // no jitter
			if tc.probeOut {
				g.sendProbe(at(400))
			}
			g.reprobe(at(tc.to))
			if !g.probeAt.Equal(at(tc.want)) {
				t.Errorf("probe at %v, want %vms", g.probeAt.Sub(at(0)), tc.want)
			}
			if c, want := g.certain(at(300)), at(tc.want).Sub(at(300)); c != want {
				t.Errorf("certain wait at 300ms = %v, want %v", c, want)
			}
		})
	}
}
