package pacetest

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

const ms = time.Millisecond

func TestBound(t *testing.T) {
	batch := func(n, workers int) []Stream { return []Stream{{Name: "b", Requests: n, Workers: workers}} }
	tests := []struct {
		name string
		s    Scenario
		want time.Duration
	}{
		{"bucket: (N-burst)/rate plus one service time",
			Scenario{Server: Config{Rate: 100, Burst: 10, Latency: 10 * ms}, Streams: batch(400, 32)}, 3910 * ms},
		{"batch within the burst", Scenario{Server: Config{Rate: 100, Burst: 10, Latency: 10 * ms}, Streams: batch(10, 10)}, 10 * ms},
		{"the workers bind: 10 one after another",
			Scenario{Server: Config{Latency: 100 * ms}, Streams: batch(10, 1)}, time.Second},
		{"concurrency cap: N*latency/C",
			Scenario{Server: Config{MaxInFlight: 8, Latency: 50 * ms}, Streams: batch(400, 32)}, 2500 * ms},
		{"fixed window: 8 windows of 50",
			Scenario{Server: Config{Window: 500 * ms, Quota: 50}, Streams: batch(400, 64)}, 3500 * ms},
		{"sliding window: 100 in any second",
			Scenario{Server: Config{Window: time.Second, Quota: 100}, Streams: batch(300, 100)}, 2000 * ms},
		// 380 beyond the burst: 100 in the first 0.5s, 100 in the halved
		// second, then 180 at 200/s take 0.9s more.
		{"halved for a second",
			Scenario{Server: Config{Rate: 200, Burst: 20, Schedule: []Change{{At: 500 * ms, Rate: 100}, {At: 1500 * ms, Rate: 200}}}, Streams: batch(400, 64)}, 2400 * ms},
		// 109 before 1s (the 110th token comes at 1s, in the burst); the
		// bucket refills to 10 during the burst; 209 more from 2s to 4s;
		// then 10 at 5s and the last 72 in 0.72s.
		{"overload bursts",
			Scenario{Server: Config{Rate: 100, Burst: 10, OverloadBursts: OverloadBursts{Every: 3 * time.Second, For: time.Second, Offset: time.Second}}, Streams: batch(400, 32)}, 5720 * ms},
		{"a penalty is never earned",
			Scenario{Server: Config{Rate: 100, Burst: 10, Penalty: time.Hour}, Streams: batch(400, 32)}, 3900 * ms},
		{"open loop: the last arrival plus a service time",
			Scenario{Server: Config{Rate: 100, Burst: 10, Latency: 10 * ms}, Streams: []Stream{{Requests: 50, Arrivals: 50}}}, 990 * ms},
		{"models do not share",
			Scenario{Server: Config{Models: map[string]Limits{"a": {Rate: 100, Burst: 10}, "b": {Rate: 10, Burst: 1}}}, Streams: []Stream{
				{Model: "a", Requests: 110, Workers: 8}, {Model: "b", Requests: 11, Workers: 2}}}, time.Second},
		{"nothing ever admitted",
			Scenario{Server: Config{Window: time.Second}, Streams: []Stream{{Requests: 3, Workers: 1, Deadline: 5 * time.Second}}}, Never},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.s.Bound().Total; got != tt.want {
				t.Errorf("Bound().Total = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBoundStreams(t *testing.T) {
	s := Scenario{Server: Config{Rate: 10, Burst: 10, Latency: 10 * ms}, Streams: []Stream{
		{Name: "rush", Requests: 50, Workers: 50, Deadline: 300 * ms},
		{Name: "late", Requests: 1, Workers: 1, Start: 2 * time.Second},
	}}
	b := s.Bound()
	// The rush: 10 at once, then one at 0.1s and one at 0.2s; then the
	// ideal client knows the rest cannot end before their deadline (the
	// next token comes at 0.3s), and the last success ends at 0.21s.
	if got := b.Streams[0]; got.Failed != 38 || got.Elapsed != 210*ms {
		t.Errorf("rush: %+v, want 38 failed, done by 210ms", got)
	}
	if got := b.Streams[1]; got.Failed != 0 || got.Elapsed != 10*ms {
		t.Errorf("late: %+v, want served at once", got)
	}
	if b.Total != 2010*ms {
		t.Errorf("Total = %v, want 2.01s", b.Total)
	}
}

// boundAfter rebuilds the server's state from a run's answers: here the
// bucket a run left empty at 1s, and a penalty it earned.
func TestBoundAfter(t *testing.T) {
	for _, penalty := range []time.Duration{0, 3 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			s := Scenario{Server: Config{Rate: 10, Burst: 5, Penalty: penalty}, Streams: []Stream{{Requests: 25, Workers: 5}}}
			api := NewAPI(s.Server)
			defer api.Close()
			start := api.Start()
			time.Sleep(time.Second) // the bucket is full: 5 tokens
			for range 8 {
				call(t, api.Transport(), "", 1) // 5 admitted, 3 refused
			}
			b := s.boundAfter(start, time.Now(), api.Answers(), []int{5})
			// 20 left: the bucket is empty, so 2s at 10/s, or first the
			// penalty of 3s, then 5 at once and 15 at 10/s.
			want := 2 * time.Second
			if penalty > 0 {
				want = penalty + 1500*ms
			}
			if b.Total != want {
				t.Errorf("penalty %v: bound after = %v, want %v", penalty, b.Total, want)
			}
		})
	}
}

// A request in service when the oracle takes over holds its place under a
// concurrency cap until it ends.
func TestBoundAfterInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Server: Config{MaxInFlight: 1, Latency: time.Second}, Streams: []Stream{{Requests: 3, Workers: 3}}}
		api := NewAPI(s.Server)
		defer api.Close()
		start := api.Start()
		go func() {
			resp, err := api.Transport().RoundTrip(get(t, "http://api.test/"))
			if err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(400 * ms)
		// At 0.4s one is in service until 1s: 2 more take 2s after it.
		b := s.boundAfter(start, time.Now(), api.Answers(), []int{1})
		if b.Total != 2600*ms {
			t.Errorf("bound after = %v, want 2.6s", b.Total)
		}
		synctest.Wait()
		time.Sleep(time.Second)
	})
}

func TestValidate(t *testing.T) {
	ok := Stream{Requests: 1, Workers: 1}
	for _, s := range []Scenario{
		{},
		{Streams: []Stream{{Requests: 0, Workers: 1}}},
		{Streams: []Stream{{Requests: 1}}},
		{Streams: []Stream{ok, {Requests: 1, Workers: 1, Client: 1}}},
		{Streams: []Stream{{Requests: 2, Workers: 1, Costs: []int{1}}}},
		{Streams: []Stream{{Requests: 1, Workers: 1, Start: -1}}},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", s)
		}
	}
	if err := (Scenario{Streams: []Stream{ok}}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestStreamBody(t *testing.T) {
	st := Stream{Model: "m", Costs: []int{100}}
	b := st.body(0)
	if len(b) != 400 || defaultCost(nil, b) != 100 || modelOf(st.path(), b) != "m" {
		t.Errorf("body %q: %d bytes, cost %d, model %q", b, len(b), defaultCost(nil, b), modelOf(st.path(), b))
	}
	if req := (Stream{}).newRequest(memoryURL, 0); req.Method != http.MethodGet || req.Header.Get("Authorization") != scenarioKey {
		t.Errorf("bodyless request: %s %v", req.Method, req.Header)
	}
}
