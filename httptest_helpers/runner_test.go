package pacetest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// told is a client that is told the server's token bucket and waits for it,
// as a perfect pacer would.
type told struct {
	next http.RoundTripper
	lim  *rate.Limiter
}

func (c told) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := c.lim.Wait(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return c.next.RoundTrip(req)
}

func toldClient(r float64, burst int) NewClient {
	return func(base http.RoundTripper) http.RoundTripper {
		return told{base, rate.NewLimiter(rate.Limit(r), burst)}
	}
}

func plain(base http.RoundTripper) http.RoundTripper { return base }

func TestRunToldClientMeetsTheBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Name: "bucket", Server: Config{Rate: 100, Burst: 10, Latency: 10 * ms}, Streams: []Stream{{Name: "b", Requests: 200, Workers: 16}}}
		r, err := Runner{}.Run(s, toldClient(100, 10))
		if err != nil {
			t.Fatal(err)
		}
		if r.Ratio < 1 || r.Ratio > 1.01 || r.Refused != 0 || r.Failed != 0 || r.Attempts != 200 || r.FirstRefusal != -1 {
			t.Errorf("told client: ratio %.3f, %d 429s, %d failed, %d attempts, first refusal %v; want 1.00x and none",
				r.Ratio, r.Refused, r.Failed, r.Attempts, r.FirstRefusal)
		}
		if r.Bound != 1910*ms || r.Streams[0].Bound != r.Bound || r.Streams[0].Requests != 200 {
			t.Errorf("bound %v, stream %+v", r.Bound, r.Streams[0])
		}
		// The requests are paced, not served slowly: the client adds the
		// wait, the server's 10ms is not counted.
		if r.AddedP99 > time.Second || r.P50 < 10*ms {
			t.Errorf("added p99 %v, p50 %v", r.AddedP99, r.P50)
		}
		if tl := r.AcceptedTimeline; len(tl) != 2 || tl[0] != 109 || tl[1] != 91 {
			t.Errorf("accepted timeline %v, want [109 91]", tl)
		}
	})
}

func TestRunRecordsRefusalsAndFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Name: "bare", Server: Config{Rate: 10, Burst: 5}, Streams: []Stream{{Name: "b", Requests: 8, Workers: 8}}}
		r, err := Runner{}.Run(s, plain)
		if err != nil {
			t.Fatal(err)
		}
		if r.Refused != 3 || r.Failed != 3 || r.RefusedPerRequest != 3.0/8 || r.FirstRefusal != 0 || r.Retries != 0 || r.Attempts != 8 {
			t.Errorf("%d 429s, %d failed, %.3f per request, first at %v; want 3, 3, 0.375, 0", r.Refused, r.Failed, r.RefusedPerRequest, r.FirstRefusal)
		}
		if len(r.Failures) != 1 || r.Failures[0].Count != 3 || r.Failures[0].Example != "429 Too Many Requests" {
			t.Errorf("failures %+v", r.Failures)
		}
		// The naive loop waits the second and gets them in.
		n, err := Runner{}.Run(s, func(base http.RoundTripper) http.RoundTripper { return NaiveRetry(base, 2) })
		if err != nil {
			t.Fatal(err)
		}
		if n.Retries != 3 || n.Attempts != 11 || n.Failed != 0 || n.Elapsed != time.Second {
			t.Errorf("naive: %d retries, %d attempts, %d failed in %v; want 3, 11, 0 in 1s", n.Retries, n.Attempts, n.Failed, n.Elapsed)
		}
		// Three were left at the first refusal, which the ideal client
		// would have got in 300ms; this one failed them at once.
		if r.RatioAfterRefusal != 0 || r.BoundAfterRefusal != 300*ms {
			t.Errorf("after refusal: ratio %v of %v, want 0 of 300ms", r.RatioAfterRefusal, r.BoundAfterRefusal)
		}
	})
}

// A client that never answers is stopped at three times the bound, and its
// requests count as cut.
func TestRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Name: "stuck", Server: Config{Rate: 10, Burst: 10}, Streams: []Stream{{Requests: 40, Workers: 2}}}
		stuck := func(http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-req.Context().Done()
				return nil, req.Context().Err()
			})
		}
		r, err := Runner{}.Run(s, stuck)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cut != 40 || r.Failed != 40 || !r.Stopped || r.Stop != 9*time.Second || r.Elapsed != r.Stop {
			t.Errorf("cut %d, failed %d, stopped %v at %v, elapsed %v; want 40 cut at 9s", r.Cut, r.Failed, r.Stopped, r.Stop, r.Elapsed)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The naive loop waits the Retry-After and gives up after its attempts.
func TestNaiveRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 1, Burst: 1})
		defer api.Close()
		rt := NaiveRetry(api.Transport(), 3)
		begin := time.Now()
		var codes []int
		for range 2 {
			req, _ := http.NewRequest(http.MethodPost, "http://api.test/", strings.NewReader(`{"a":1}`))
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		// The second request is refused once, waits 1s and gets in.
		if codes[0] != 200 || codes[1] != 200 || time.Since(begin) != time.Second || api.Stats().Refused != 1 {
			t.Errorf("codes %v after %v with %d refusals", codes, time.Since(begin), api.Stats().Refused)
		}
		// Against a server that refuses everything it gives up after 3.
		none := NewAPI(Config{Window: time.Second})
		defer none.Close()
		resp, err := NaiveRetry(none.Transport(), 3).RoundTrip(get(t, "http://api.test/"))
		if err != nil || resp.StatusCode != 429 || none.Stats().Requests != 3 {
			t.Errorf("refused everything: %v, %d requests", err, none.Stats().Requests)
		}
		resp.Body.Close()
		// Its wait ends with the caller's context.
		ctx, cancel := context.WithTimeout(t.Context(), 500*ms)
		defer cancel()
		if _, err := NaiveRetry(none.Transport(), 3).RoundTrip(get(t, "http://api.test/").WithContext(ctx)); err != context.DeadlineExceeded {
			t.Errorf("err = %v, want the context's deadline", err)
		}
	})
}

func TestRunOverLoopback(t *testing.T) {
	// No limit, so that the timing of real sockets cannot fail a request.
	s := Scenario{Name: "loopback", Server: Config{Latency: 10 * ms, PerKey: true}, Streams: []Stream{{Requests: 30, Workers: 4}}}
	var ended atomic.Int64
	r, err := Runner{Loopback: true, Progress: func(n int) {
		for {
			if old := ended.Load(); int64(n) <= old || ended.CompareAndSwap(old, int64(n)) {
				return
			}
		}
	}}.Run(s, plain)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.Refused != 0 || r.Attempts != 30 || r.Ratio < 1 || ended.Load() != 30 || r.Bound != 80*ms {
		t.Errorf("over loopback: %d failed, %d 429s, %d attempts, ratio %.2f of %v, %d ended",
			r.Failed, r.Refused, r.Attempts, r.Ratio, r.Bound, ended.Load())
	}
}

func TestRunInvalid(t *testing.T) {
	if _, err := (Runner{}).Run(Scenario{}, plain); err == nil {
		t.Error("Run of an empty scenario succeeded")
	}
}

// In memory, Network puts its round trip into every attempt, and Scatter
// spreads the requests of a burst over up to its length, the same way in
// every run (a synctest bubble's clock starts at the same instant each time).
func TestRunNetworkAndScatter(t *testing.T) {
	s := Scenario{Name: "free", Server: Config{Latency: 10 * ms}, Streams: []Stream{{Name: "b", Requests: 64, Workers: 64}}}
	sent := func(r Runner) []time.Time {
		var at []time.Time
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			res, err := r.Run(s, func(base http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					at = append(at, time.Now())
					mu.Unlock()
					return base.RoundTrip(req)
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := 10*ms + r.Network + r.Scatter; res.Elapsed > want {
				t.Errorf("%+v: took %v, want at most %v", r, res.Elapsed, want)
			}
			if p := res.P50; p < 10*ms+r.Network {
				t.Errorf("%+v: p50 %v, want the service time and the round trip, %v", r, p, 10*ms+r.Network)
			}
			slices.SortFunc(at, time.Time.Compare)
		})
		return at
	}
	if at := sent(Runner{}); at[0] != at[len(at)-1] {
		t.Errorf("without Scatter the burst left from %v to %v, want one instant", at[0], at[len(at)-1])
	}
	r := Runner{Network: 4 * ms, Scatter: 200 * time.Microsecond}
	at := sent(r)
	if spread := at[len(at)-1].Sub(at[0]); spread < 100*time.Microsecond || spread >= r.Scatter {
		t.Errorf("with Scatter %v the burst left over %v", r.Scatter, spread)
	}
	if again := sent(r); !slices.Equal(at, again) {
		t.Errorf("two runs scattered the burst differently")
	}
}

// A request's context has a deadline only if its stream gives one: the end
// of a run cancels what is left, so a client that fails a wait longer than
// its caller's deadline at once does not fail a patient caller's request.
func TestRunStopIsNoDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Name: "slow", Server: Config{Latency: 10 * time.Second}, Streams: []Stream{
			{Name: "patient", Requests: 2, Workers: 2},
			{Name: "hurried", Requests: 2, Workers: 2, Deadline: time.Minute},
		}}
		var withDeadline atomic.Int32
		r, err := Runner{StopAt: 0.5}.Run(s, func(base http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if _, ok := req.Context().Deadline(); ok {
					withDeadline.Add(1)
				}
				return base.RoundTrip(req)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := withDeadline.Load(); n != 2 {
			t.Errorf("%d requests had a deadline, want the 2 of the stream that gives one", n)
		}
		if r.Cut != 4 || r.Failed != 4 {
			t.Errorf("%d cut, %d failed; want all 4 cut by the stop", r.Cut, r.Failed)
		}
	})
}
