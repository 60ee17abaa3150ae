package pacetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// every returns attempts of client c sent every step in [from, to), all
// answered status.
func every(c int, from, to, step time.Duration, status int) []attemptRecord {
	var as []attemptRecord
	for t := from; t < to; t += step {
		as = append(as, attemptRecord{client: c, sent: epoch.Add(t), answered: epoch.Add(t), status: status})
	}
	return as
}

func concat(parts ...[]attemptRecord) []attemptRecord {
	var as []attemptRecord
	for _, p := range parts {
		as = append(as, p...)
	}
	return as
}

func TestChangesAfterFall(t *testing.T) {
	s := Scenario{Server: Config{Rate: 100, Schedule: []Change{{At: 2 * time.Second, Rate: 50}}}}
	// 429s every 10ms for half a second, then accepted at 50/s: at 2.4s
	// the 429s are still 10 of 285 attempts (3.5%), at 2.5s none.
	as := concat(every(0, 0, 2*time.Second, 10*ms, 200), every(0, 2*time.Second, 2500*ms, 10*ms, 429), every(0, 2500*ms, 8*time.Second, 20*ms, 200))
	got := changes(s, run{start: epoch, attempts: as})
	want := []ChangeResult{{At: 2 * time.Second, From: 100, To: 50, Settled: 500 * ms, Reached: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	// Accepted at 40/s, under 85% of 50: never settled.
	as = concat(every(0, 0, 2*time.Second, 10*ms, 200), every(0, 2*time.Second, 8*time.Second, 25*ms, 200))
	if got := changes(s, run{start: epoch, attempts: as}); got[0].Reached || got[0].Settled != 5975*ms {
		t.Errorf("at 40/s: %+v, want not reached in the 5.975s of work", got[0])
	}
}

func TestChangesAfterRise(t *testing.T) {
	s := Scenario{Server: Config{Rate: 50, Schedule: []Change{{At: 3 * time.Second, Rate: 100}}}}
	// At 50/s until 5s, then 100/s: the half second from 4.9s holds 5
	// and 40, 90% of 50.
	as := concat(every(0, 0, 5*time.Second, 20*ms, 200), every(0, 5*time.Second, 10*time.Second, 10*ms, 200))
	got := changes(s, run{start: epoch, attempts: as})
	want := []ChangeResult{{At: 3 * time.Second, From: 50, To: 100, Settled: 2400 * ms, Reached: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestSharing(t *testing.T) {
	s := Scenario{Server: Config{Rate: 100}, Clients: 2, Streams: []Stream{{Client: 0}, {Client: 1}}}
	as := concat(
		every(0, 0, 6*time.Second, 1000*ms/60, 200),
		every(1, 0, 6*time.Second, 1000*ms/30, 200),
		every(1, 0, 6*time.Second, 200*ms, 429),
	)
	got := sharing(s, run{start: epoch, attempts: as}, []time.Time{epoch.Add(5 * time.Second), epoch.Add(6 * time.Second)})
	// From 3s to 5s: 120 and 60 accepted, 10 refused.
	want := &SharingResult{From: 3 * time.Second, To: 5 * time.Second, Aggregate: 0.9, RefusedShare: 10.0 / 190, ClientShares: []float64{2.0 / 3, 1.0 / 3}}
	if diff := cmp.Diff(want, got, cmpApprox); diff != "" {
		t.Errorf("sharing (-want +got):\n%s", diff)
	}
	if got := sharing(s, run{start: epoch, attempts: as}, []time.Time{epoch.Add(3500 * ms), epoch.Add(6 * time.Second)}); got != nil {
		t.Errorf("sharing over half a second: %+v, want none", got)
	}
}

var cmpApprox = cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })

func TestPoliteness(t *testing.T) {
	s := Scenario{Streams: []Stream{{Model: "a"}, {Model: "b"}}}
	at := func(d time.Duration, stream int) attemptRecord {
		return attemptRecord{stream: stream, sent: epoch.Add(d), answered: epoch.Add(d), status: 429}
	}
	rn := run{
		start:   epoch,
		answers: []Answer{{RetryAfter: 2 * time.Second}, {RetryAfter: time.Second}, {}},
		// Sent at the first refusal (0) and before it are not counted;
		// then two within a second for model a, one for model b.
		attempts: []attemptRecord{at(0, 0), at(0, 0), at(100*ms, 0), at(200*ms, 1), at(1099*ms, 0), at(2500*ms, 0)},
	}
	if got := politeness(s, rn, epoch); got != 2 {
		t.Errorf("politeness = %d, want 2", got)
	}
	rn.answers = []Answer{{}}
	if got := politeness(s, rn, epoch); got != 0 {
		t.Errorf("politeness without any Retry-After = %d, want 0", got)
	}
}

func TestPercentile(t *testing.T) {
	for _, tt := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 99, 7},
		{[]time.Duration{4, 1, 3, 2}, 50, 2},
		{[]time.Duration{4, 1, 3, 2}, 99, 4},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
	} {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %g) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
	}
}

func TestFailureKind(t *testing.T) {
	a := `Get "http://127.0.0.1:39211/v1/items": pacing wait 10.02s exceeds deadline`
	b := `Get "http://127.0.0.1:40001/v1/items": pacing wait 3s exceeds deadline`
	if failureKind(a) != failureKind(b) {
		t.Errorf("%q and %q are of different kinds", failureKind(a), failureKind(b))
	}
	c := `retries exceeded. last result: &{429 Too Many Requests 0x248dd358360 85} in partition 127.0.0.1:1#df7eda98db4b46bf`
	d := `retries exceeded. last result: &{429 Too Many Requests 0xc000123 85} in partition 127.0.0.1:2#0011223344556677`
	if failureKind(c) != failureKind(d) {
		t.Errorf("%q and %q are of different kinds", failureKind(c), failureKind(d))
	}
	if failureKind("429 Too Many Requests") == failureKind("503 Service Unavailable") {
		t.Error("different statuses are one kind")
	}
}
