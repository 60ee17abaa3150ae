package pacehttp

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// get sends one GET to host through rt and closes the answer's body.
func get(t *testing.T, rt http.RoundTripper, host string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+host+"/v1/x", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestPartitionsExpireWithoutTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Pace(WithPartitionExpiry(time.Minute))(okTransport()).(*pacer)
		for _, host := range []string{"a.test", "b.test", "c.test"} {
			get(t, p, host)
		}
		time.Sleep(2 * time.Minute) // no request meanwhile
		if n := p.parts.len(); n != 0 {
			t.Errorf("%d partitions two minutes after the last request, want 0", n)
		}
		get(t, p, "d.test") // the sweeper starts again
		time.Sleep(2 * time.Minute)
		if n := p.parts.len(); n != 0 {
			t.Errorf("%d partitions after the second sweep, want 0", n)
		}
	})
}

// A tiny expiry must not sweep without pause while a request is inside a
// partition (it did, at every instant, with 1ns): the sweeps keep at least
// a second apart, and still drop what expired.
func TestPartitionSweepInterval(t *testing.T) {
	for _, c := range []struct{ expiry, want time.Duration }{
		{time.Nanosecond, time.Second},
		{1500 * time.Millisecond, time.Second},
		{4 * time.Second, 2 * time.Second},
		{10 * time.Minute, 5 * time.Minute},
	} {
		p := Pace(WithPartitionExpiry(c.expiry))(okTransport()).(*pacer)
		if got := p.parts.sweepInterval(); got != c.want {
			t.Errorf("expiry %v: sweeps every %v, want %v", c.expiry, got, c.want)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "held.test" {
				<-release
			}
			return okTransport().RoundTrip(r)
		})
		p := Pace(WithPartitionExpiry(time.Nanosecond))(base).(*pacer)
		get(t, p, "a.test")
		get(t, p, "b.test")
		done := make(chan struct{})
		go func() { get(t, p, "held.test"); close(done) }()
		// With a request inside a partition the sweeper keeps running:
		// before, at every instant, and virtual time never passed.
		time.Sleep(2 * time.Second)
		if names := partitionNames(p); names != "held.test" {
			t.Errorf("partitions %q two seconds after the last request, want only the one with a request inside", names)
		}
		close(release)
		<-done
		time.Sleep(2 * time.Second)
		if n := p.parts.len(); n != 0 {
			t.Errorf("%d partitions two seconds after the held request, want 0", n)
		}
	})
}

func TestPartitionsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Pace(WithMaxPartitions(2))(okTransport()).(*pacer)
		get(t, p, "a.test")
		time.Sleep(time.Second)
		get(t, p, "b.test")
		time.Sleep(time.Second)
		get(t, p, "a.test") // b is now the one unused for longest
		get(t, p, "c.test")
		if n := p.parts.len(); n != 2 {
			t.Fatalf("%d partitions, want 2", n)
		}
		names := partitionNames(p)
		if want := "a.test c.test"; names != want {
			t.Errorf("partitions %q, want %q", names, want)
		}
	})
}

// An open response body holds its partition, and its slot, past the
// partition's expiry: a long stream must not lose its place.
func TestPartitionHeldByOpenBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Pace(WithPartitionExpiry(time.Minute), WithConcurrency(1))(okTransport()).(*pacer)
		req, _ := http.NewRequest("GET", "http://a.test/stream", nil)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if n := p.parts.len(); n != 1 {
			t.Fatalf("%d partitions with a body open past the expiry, want 1", n)
		}
		done := make(chan struct{})
		go func() {
			get(t, p, "a.test") // waits for the slot
			close(done)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("a second request got the only slot while the first body was open")
		default:
		}
		resp.Body.Close()
		<-done
	})
}

// partitionNames returns the names of p's partitions, sorted, spaced.
func partitionNames(p *pacer) string {
	p.parts.mu.Lock()
	defer p.parts.mu.Unlock()
	var names []string
	for _, part := range p.parts.m {
		names = append(names, part.name)
	}
	sortStrings(names)
	return strings.Join(names, " ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestPartitionMemory measures what a partition costs once it has learned a
// rate from a refusal: at most 2 KiB.
func TestPartitionMemory(t *testing.T) {
	const n = 2000
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		refused := map[string]bool{}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			first := !refused[req.URL.Host]
			refused[req.URL.Host] = true
			mu.Unlock()
			h := http.Header{}
			code := http.StatusOK
			if first {
				code = http.StatusTooManyRequests
				h.Set("Retry-After", "1")
			}
			return &http.Response{StatusCode: code, Header: h, Body: http.NoBody, Request: req}, nil
		})
		p := Pace(WithPartitionExpiry(0))(base).(*pacer)
		hosts := make([]string, n)
		for i := range hosts {
			hosts[i] = fmt.Sprintf("h%d.test", i)
		}
		before := liveHeap()
		for _, h := range hosts {
			get(t, p, h) // refused: the partition learns a rate
			get(t, p, h)
		}
		after := liveHeap()
		if got := p.parts.len(); got != n {
			t.Fatalf("%d partitions, want %d", got, n)
		}
		per := (after - before) / n
		t.Logf("%d bytes per partition", per)
		if per > 2048 {
			t.Errorf("%d bytes per partition, want at most 2048", per)
		}
		runtime.KeepAlive(p)
	})
}

// liveHeap returns the bytes of live objects after a collection. (HeapInuse
// counts whole spans, and moved by ±60 bytes per partition from run to run
// with allocations that were not the partitions'.)
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// While the learner searches, the budget's burst is what the search sends
// in searchDoubling, not the server's burst: the search's rate is a guess,
// and the bucket it fills while the gate is closed leaves all at once when
// the gate opens. Over a network the 60-a-minute batch (a burst of 60, 1/s)
// searched at 9.9/s and let 16 out at one opening, 15 of them refused.
func TestRateUpdateBurstWhileSearching(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase phase
		rate  float64
		want  int
	}{
		{"searching slowly", searching, 10, 1},
		{"searching fast", searching, 200, headroom(30)},
		{"holding", holding, 10, headroom(51)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := &partition{learn: newLearner(at(0), 0, 0, 0), sentRate: math.Inf(1)}
			part.learn.burst = 51
			switch tc.phase {
			case searching:
				part.learn.startSearch(at(0), tc.rate)
			case holding:
				part.learn.startHold(at(0), tc.rate/sendMargin)
			}
			l, ok := part.rateUpdate(at(0))
			if !ok {
				t.Fatal("no update")
			}
			if l.Requests.Burst != tc.want {
				t.Errorf("burst %d at %.0f/s, want %d", l.Requests.Burst, l.Requests.Rate, tc.want)
			}
		})
	}
}

// In a closed loop at a concurrency cap of 8, over a network, the 8 answers
// of one round and the 16 sends of the next interleave at one instant, and
// the server sees the 16 at once, in any order: the 8 it serves may have
// left last, the 8 it refuses first. A refusal's level is its burst's top,
// and the successes of the burst count from what the server still held
// before it (nothing: its answers came in during the burst). Read request
// by request, the round showed successes at 16 and refusals at 2, a rate,
// and the batch took 2.1x its bound.
func TestBurstLevels(t *testing.T) {
	part := &partition{}
	send := func(now time.Time) ticket {
		part.inFlight++
		tk := ticket{sent: now, inFlight: int32(part.inFlight)}
		tk.burstFrom, tk.burstBase = part.sent(now)
		return tk
	}
	for range 8 {
		send(at(153))
	}
	var round []ticket
	for range 8 {
		part.inFlight-- // an answer of the round before
		round = append(round, send(at(204)), send(at(204)))
	}
	refused := round[0] // left first, at level 8 of the client's count
	if got := part.refusalLevel(refused); got != 16 {
		t.Errorf("refusal level %d, want the burst's 16", got)
	}
	most := 0
	for _, tk := range round[8:] { // left last, at levels up to 16
		most = max(most, part.successLevel(tk))
	}
	if most != 8 {
		t.Errorf("8 successes of the burst at levels up to %d, want 8", most)
	}
	// A request alone keeps its own level.
	part.inFlight = 3
	alone := send(at(300))
	if got := part.successLevel(alone); got != 4 {
		t.Errorf("a lone success at level %d, want 4", got)
	}
}
