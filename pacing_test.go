package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// send makes one GET through rt and returns its status, 0 on error.
func send(t *testing.T, rt http.RoundTripper, ctx context.Context, header ...string) (int, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/v1/x", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// fanOut calls do for 0..n-1 from workers goroutines and returns the time
// they took together.
func fanOut(n, workers int, do func(i int)) time.Duration {
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				do(i)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// batch sends n requests from workers goroutines; a 429 is sent again at
// once (the pacer decides when it leaves). It returns the elapsed time and
// the 429s met.
func batch(t *testing.T, rt http.RoundTripper, n, workers int) (time.Duration, int) {
	t.Helper()
	var refused atomic.Int64
	elapsed := fanOut(n, workers, func(int) {
		for {
			code, err := send(t, rt, context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			if code != http.StatusTooManyRequests {
				return
			}
			refused.Add(1)
		}
	})
	return elapsed, int(refused.Load())
}

func TestPaceConfiguredRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 100, Burst: 10})
		rt := Pace(WithRate(100, 10))(api.Transport())
		elapsed, refused := batch(t, rt, 300, 16)
		if refused != 0 {
			t.Errorf("429s = %d, want 0", refused)
		}
		if bound := 2900 * time.Millisecond; elapsed < bound || elapsed > bound*105/100 {
			t.Errorf("elapsed %v, want about %v", elapsed, bound)
		}
	})
}

func TestPaceLearnsUnknownRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 100, Burst: 10})
		rt := Pace()(api.Transport())
		const n = 1500
		_, refused := batch(t, rt, n, 16)
		// The cold start meets the concurrent callers beyond the burst
		// (up to 16 - 10), the calibration probe a few more; how many
		// depends on the order the callers run in. Few means 2% here.
		if refused > n/50 {
			t.Errorf("429s = %d, want at most %d", refused, n/50)
		}
		tl := api.Stats().Timeline
		last := tl[len(tl)-6 : len(tl)-1] // whole seconds at the end
		// Near the limit on average; a second may dip where a late
		// refusal cuts the rate (by a tenth or so), and hold at most the
		// rate and the burst, when a climb empties it.
		sum := 0
		for _, n := range last {
			sum += n
		}
		if mean := sum / len(last); mean < 92 || mean > 102 || slices.Min(last) < 80 || slices.Max(last) > 110 {
			t.Errorf("accepted per second at the end = %v, want 92..102 on average, each 80..110", last)
		}
	})
}

func TestPaceHeaderDialects(t *testing.T) {
	for _, d := range []pacetest.Dialect{pacetest.OpenAI, pacetest.Anthropic, pacetest.IETF, pacetest.Legacy, pacetest.GitHub} {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A one-second burst, so that every dialect's window
				// states the true rate.
				api := pacetest.NewAPI(pacetest.Config{Rate: 50, Burst: 50, Dialect: d})
				rt := Pace()(api.Transport())
				elapsed, refused := batch(t, rt, 550, 8)
				// Answers in flight while the first headers arrive
				// can race the bucket's first sync: allow one or two.
				if refused > 2 {
					t.Errorf("429s = %d, want at most 2", refused)
				}
				if bound := 10 * time.Second; elapsed > bound*120/100 {
					t.Errorf("elapsed %v, want within 20%% of %v", elapsed, bound)
				}
			})
		})
	}
}

// After a 429 with Retry-After, the partition's gate is closed: a burst of
// callers queues at it instead of each hitting the server.
func TestPaceCoolDownHoldsBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 1, Burst: 1})
		count, coolDowns := eventCounter(EventCoolDown)
		rt := Pace(count)(api.Transport())
		ctx := context.Background()
		if code, _ := send(t, rt, ctx); code != 200 {
			t.Fatalf("first status %d", code)
		}
		if code, _ := send(t, rt, ctx); code != 429 {
			t.Fatalf("second status %d, want 429", code)
		}
		hits := api.Stats().Requests
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { send(t, rt, ctx) })
		}
		synctest.Wait()
		if got := api.Stats().Requests; got != hits {
			t.Errorf("server hits during the cool-down: %d, want 0", got-hits)
		}
		wg.Wait()
		if got := coolDowns.Load(); got < 1 {
			t.Errorf("cool-down events = %d", got)
		}
	})
}

func TestPaceConcurrencyFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Latency: 100 * time.Millisecond})
		var mu sync.Mutex
		var order []string
		log := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			order = append(order, r.Header.Get("X-N"))
			mu.Unlock()
			return api.Transport().RoundTrip(r)
		})
		rt := Pace(WithConcurrency(1), WithRate(1000, 100))(log)
		var wg sync.WaitGroup
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			wg.Go(func() { send(t, rt, context.Background(), "X-N", n) })
			synctest.Wait() // each queues before the next arrives
		}
		wg.Wait()
		if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, order); diff != "" {
			t.Errorf("send order (-want +got):\n%s", diff)
		}
		if p := api.Stats().PeakConcurrency; p != 1 {
			t.Errorf("peak concurrency %d, want 1", p)
		}
	})
}

func TestPaceCancelFreesSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Latency: time.Second})
		rt := Pace(WithConcurrency(1), WithRate(1000, 100))(api.Transport())
		var wg sync.WaitGroup
		wg.Go(func() { send(t, rt, context.Background()) }) // holds the slot 1s
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := send(t, rt, ctx); errc <- err }()
		synctest.Wait()
		start := time.Now()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || time.Since(start) != 0 {
			t.Errorf("cancelled waiter: err %v after %v, want context.Canceled at once", err, time.Since(start))
		}
		// The next caller gets the slot as soon as the first frees it.
		if _, err := send(t, rt, context.Background()); err != nil || time.Since(start) != 2*time.Second {
			t.Errorf("next caller: err %v, done after %v, want 2s", err, time.Since(start))
		}
		wg.Wait()
	})
}

func TestPaceCancelReturnsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := Pace(WithRate(1, 1))(okTransport())
		send(t, rt, context.Background()) // empties the bucket
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { send(t, rt, ctx); close(done) }() // reserves the token of t=1s
		time.Sleep(500 * time.Millisecond)
		cancel()
		<-done
		start := time.Now()
		send(t, rt, context.Background())
		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("after a cancelled reservation, waited %v, want 500ms", got)
		}
	})
}

func TestPaceWaitFailsFast(t *testing.T) {
	tests := []struct {
		name     string
		opts     []PaceOption
		deadline time.Duration
		deadl    bool
	}{
		{"deadline", []PaceOption{WithMaxWait(0)}, 2 * time.Second, true},
		{"max wait", []PaceOption{WithMaxWait(3 * time.Second)}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := Pace(append(tc.opts, WithRate(0.1, 1))...)(okTransport())
				send(t, rt, context.Background()) // next token in 10s
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				body := &trackBody{}
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://api.test/", body)
				start := time.Now()
				_, err := rt.RoundTrip(req)
				if time.Since(start) != 0 {
					t.Errorf("failed after %v, want at once", time.Since(start))
				}
				var we *WaitError
				if !errors.As(err, &we) {
					t.Fatalf("err = %v, want a *WaitError", err)
				}
				if bound := map[bool]error{true: ErrWaitPastDeadline, false: ErrWaitTooLong}[tc.deadl]; !errors.Is(err, bound) {
					t.Errorf("err = %v, want it to match %v", err, bound)
				}
				if got := errors.Is(err, context.DeadlineExceeded); got != tc.deadl {
					t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", got, tc.deadl)
				}
				if body.closed.Load() != 1 {
					t.Errorf("body closed %d times, want 1", body.closed.Load())
				}
			})
		})
	}
}

func TestPacePartitionKeyHidesCredential(t *testing.T) {
	const secret = "sk-very-secret-123"
	var parts []string
	var mu sync.Mutex
	rt := Pace(WithRate(1000, 1), WithHook(func(e Event) {
		mu.Lock()
		parts = append(parts, e.Partition)
		mu.Unlock()
	}))(throttleTransport())
	for _, h := range []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
		send(t, rt, context.Background(), h, "Bearer "+secret)
	}
	if len(parts) == 0 {
		t.Fatal("no events")
	}
	for _, p := range parts {
		if strings.Contains(p, secret) || strings.Contains(p, "Bearer") {
			t.Errorf("partition %q shows the credential", p)
		}
		if !strings.HasPrefix(p, "api.test#") {
			t.Errorf("partition %q, want host#hash", p)
		}
	}
}

func TestPaceSeparateKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 10, Burst: 1, PerKey: true})
		rt := Pace(WithRate(10, 1))(api.Transport())
		var wg sync.WaitGroup
		for range 30 { // three seconds of key A's budget
			wg.Go(func() { send(t, rt, context.Background(), "Authorization", "A") })
		}
		synctest.Wait()
		start := time.Now()
		if code, _ := send(t, rt, context.Background(), "Authorization", "B"); code != 200 || time.Since(start) != 0 {
			t.Errorf("key B: status %d after %v, want 200 at once", code, time.Since(start))
		}
		wg.Wait()
		if r := api.Stats().Refused; r != 0 {
			t.Errorf("429s = %d, want 0", r)
		}
	})
}

func TestPacePartitionExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Pace(WithPartitionExpiry(time.Minute), WithRate(100, 1))(okTransport()).(*pacer)
		for _, host := range []string{"a.test", "b.test", "c.test"} {
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			resp, _ := p.RoundTrip(req)
			resp.Body.Close()
		}
		if n := p.parts.len(); n != 3 {
			t.Fatalf("%d partitions, want 3", n)
		}
		time.Sleep(2 * time.Minute)
		req, _ := http.NewRequest("GET", "http://d.test/", nil)
		resp, _ := p.RoundTrip(req)
		resp.Body.Close()
		if n := p.parts.len(); n != 1 {
			t.Errorf("%d partitions after expiry, want 1", n)
		}
	})
}

// The pacer never changes the caller's request.
func TestPaceDoesNotMutateRequest(t *testing.T) {
	rt := Pace(WithTokenRate(1000, 1000), WithConcurrency(2))(okTransport())
	body := `{"model":"m","max_tokens": 64}`
	req, _ := http.NewRequest("POST", "http://api.test/v1", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer x")
	before := req.Header.Clone()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if diff := cmp.Diff(before, req.Header); diff != "" {
		t.Errorf("header changed (-before +after):\n%s", diff)
	}
}

func okTransport() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			r.Body.Close()
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
}

func throttleTransport() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"0"}}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
}

type trackBody struct{ closed atomic.Int32 }

func (b *trackBody) Read([]byte) (int, error) { return 0, io.EOF }
func (b *trackBody) Close() error             { b.closed.Add(1); return nil }

// Callers who give up in line leave nothing behind, wherever they stood:
// only the head of a partition's line holds a reservation, and it hands it
// back whole. A request that comes after them waits only for its own turn,
// with a stated rate or a learned one.
func TestPaceCancelledWaitersLeaveNoDebt(t *testing.T) {
	for _, stated := range []bool{true, false} {
		t.Run(fmt.Sprintf("stated %v", stated), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := pacetest.NewAPI(pacetest.Config{Rate: 10, Burst: 10, Latency: 10 * time.Millisecond})
				defer api.Close()
				var opts []Option
				if stated {
					opts = append(opts, WithRate(10, 10))
				}
				rt := New(api.Transport(), opts...)
				chainBatch(t, rt, 60, 8, time.Minute, nil) // learns the rate, empties the bucket
				// They line up one after another, and give up in the order
				// they came: the ones in front leave first.
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
						defer cancel()
						send(t, rt, ctx)
					})
					time.Sleep(time.Millisecond)
				}
				wg.Wait()
				time.Sleep(time.Second) // the bucket refills: the next one may go at once
				start := time.Now()
				if code, err := send(t, rt, context.Background()); err != nil || code != http.StatusOK {
					t.Fatalf("status %d, err %v", code, err)
				}
				if got := time.Since(start); got > 100*time.Millisecond {
					t.Errorf("waited %v after fifty callers gave up, want at most 100ms", got)
				}
			})
		})
	}
}

// A stated token rate is as certain as a stated request rate: a wait for
// tokens past the deadline fails at once.
func TestPaceTokenWaitFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cost := func(*http.Request) int { return 10 }
		rt := Pace(WithTokenRate(10, 10), WithCostFunc(cost))(okTransport())
		send(t, rt, context.Background()) // spends the ten tokens: the next ten in 1s
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := send(t, rt, ctx)
		if !errors.Is(err, ErrWaitPastDeadline) {
			t.Fatalf("err = %v, want a wait past the deadline", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("failed after %v, want at once", got)
		}
	})
}

// A 403 with a rate-limit hint, as GitHub answers for its secondary limits,
// closes the gate like a 429: the next request waits.
func TestPaceForbiddenWithHintClosesGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := pacetest.NewScripted(pacetest.Status(http.StatusForbidden, "Retry-After", "2"), pacetest.OK("a"), pacetest.OK("b"))
		defer sc.Close()
		count, coolDowns := eventCounter(EventCoolDown)
		rt := Pace(count)(sc.Transport())
		if code, _ := send(t, rt, context.Background()); code != http.StatusForbidden {
			t.Fatalf("status %d, want the 403", code)
		}
		start := time.Now()
		send(t, rt, context.Background())
		if got := time.Since(start); got < 2*time.Second {
			t.Errorf("the next request left after %v, want after the 2s the 403 asked", got)
		}
		if n := coolDowns.Load(); n != 1 {
			t.Errorf("%d cool-downs, want 1", n)
		}
	})
}

// Under New, hooks hear of an attempt when it leaves the pacer, and the
// pacer's own events carry the number of the attempt they concern.
func TestPaceEventsCarryTheAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := pacetest.NewScripted(pacetest.TooManyRequests("1"), pacetest.OK("done"))
		defer sc.Close()
		var mu sync.Mutex
		var got []string
		rt := New(sc.Transport(), WithHook(func(e Event) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s %d", e.Kind, e.Attempt))
			mu.Unlock()
		}))
		if _, err := send(t, rt, context.Background()); err != nil {
			t.Fatal(err)
		}
		// (The refusal also sets the rate the pacer searches from.)
		want := []string{"attempt 1", "rate-change 1", "cool-down 1", "retry 1", "paced 2", "attempt 2"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// One failing server does not spend the retry budget of another: each
// partition has its own.
func TestRetryBudgetPerPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := map[string]int{}
		// Every host fails every other call: a first attempt fails, its
		// retry gets through.
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			calls[req.URL.Host]++
			n := calls[req.URL.Host]
			mu.Unlock()
			code := http.StatusOK
			if n%2 == 1 {
				code = http.StatusInternalServerError
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		// One unhinted retry a second, per partition.
		rt := New(base, WithRetryBudget(0, 1), WithMaxAttempts(2), WithBackoff(0, 0))
		get := func(host string) int {
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := get("a.test"); got != http.StatusOK {
			t.Fatalf("a.test: %d, want its retry's 200", got)
		}
		if got := get("a.test"); got != http.StatusInternalServerError {
			t.Fatalf("a.test again: %d, want the 500 kept: its budget is spent", got)
		}
		if got := get("b.test"); got != http.StatusOK {
			t.Errorf("b.test: %d, want its retry's 200: a.test spent only its own budget", got)
		}
	})
}

// The deprecated Request.Cancel, which net/http still honours, ends a
// request held by the pacer as its context would: at the head of the line
// and behind it.
func TestPaceRequestCancelChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := Pace(WithRate(1, 1))(okTransport())
		send(t, rt, context.Background()) // empties the bucket: the next unit in 1s
		errs := make(chan error, 2)
		cancel := make(chan struct{})
		for range 2 { // the head, then one behind it
			go func() {
				req, _ := http.NewRequest("GET", "http://api.test/", nil)
				req.Cancel = cancel
				_, err := rt.RoundTrip(req)
				errs <- err
			}()
			synctest.Wait()
		}
		time.Sleep(100 * time.Millisecond)
		close(cancel)
		start := time.Now()
		for range 2 {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want one matching context.Canceled", err)
			}
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("returned %v after Cancel closed, want at once", got)
		}
	})
}

// No value of a pacing option panics, and a request still goes through:
// each is taken, clamped or ignored as its doc says.
func TestPaceOptionsHostileValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	opts := map[string]PaceOption{
		"rate NaN": WithRate(nan, 1), "rate +Inf": WithRate(inf, 1), "rate -1": WithRate(-1, 1),
		"rate tiny": WithRate(math.SmallestNonzeroFloat64, 1), "rate huge burst": WithRate(1e300, math.MaxInt),
		"rate burst -5": WithRate(10, -5), "token rate NaN": WithTokenRate(nan, 0), "token rate +Inf": WithTokenRate(inf, 1),
		"concurrency -1": WithConcurrency(-1), "concurrency max": WithConcurrency(math.MaxInt),
		"floor NaN": WithRateFloor(nan), "floor +Inf": WithRateFloor(inf), "floor -1": WithRateFloor(-1),
		"expiry -1": WithPartitionExpiry(-1), "expiry max": WithPartitionExpiry(math.MaxInt64),
		"partitions -1": WithMaxPartitions(-1), "partitions 1": WithMaxPartitions(1),
		"nil key func": WithKeyFunc(nil), "nil cost func": WithCostFunc(nil), "nil limiter": WithLimiter(nil),
		"empty secret": WithPartitionSecret(nil), "max wait -1": WithMaxWait(-1),
	}
	for name, o := range opts {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := Pace(o, WithMaxWait(time.Second))(okTransport())
				if code, err := send(t, rt, context.Background()); err != nil || code != http.StatusOK {
					t.Errorf("status %d, err %v, want the request through", code, err)
				}
			})
		})
	}
}

// chainBatch sends n requests from workers goroutines through the full
// chain, each with the deadline, and returns the elapsed time and how many
// did not end in a 200. body, if not nil, gives request i's JSON body (sent
// as a POST).
func chainBatch(t testing.TB, rt http.RoundTripper, n, workers int, deadline time.Duration, body func(i int) []byte) (time.Duration, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var failed atomic.Int32
	elapsed := fanOut(n, workers, func(i int) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/v1/x", nil)
		if body != nil {
			req, _ = http.NewRequestWithContext(ctx, "POST", "http://api.test/v1/messages", bytes.NewReader(body(i)))
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			failed.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed.Add(1)
		}
	})
	return elapsed, int(failed.Load())
}

// Header rates wander by a few percent from one answer to the next. Each
// wander used to void every waiter's reservation and send them all to the
// back of a fresh queue, so that almost none got out.
func TestPaceTokenBudgetFromHeadersKeepsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, tokenRate = 400, 8000
		api := pacetest.NewAPI(pacetest.Config{Rate: 200, Burst: 20, TokenRate: tokenRate, TokenBurst: tokenRate,
			Latency: 10 * time.Millisecond, Dialect: pacetest.OpenAI})
		rng := rand.New(rand.NewPCG(1, 2))
		costs := make([]int, n)
		total := 0
		for i := range costs {
			costs[i] = 20 + rng.IntN(161)
			total += costs[i]
		}
		body := func(i int) []byte {
			return []byte(`{"prompt":"` + strings.Repeat("x", costs[i]*4-13) + `"}`)
		}
		bound := time.Duration(float64(total-tokenRate) / tokenRate * float64(time.Second))
		elapsed, failed := chainBatch(t, New(api.Transport()), n, 64, 3*bound, body)
		if failed != 0 || api.Stats().Refused != 0 {
			t.Errorf("%d failed, %d refused; want none", failed, api.Stats().Refused)
		}
		if elapsed > bound*125/100 {
			t.Errorf("took %v, want within 25%% of the token bound %v", elapsed, bound)
		}
	})
}

// A rate the pacer is still learning is provisional: a long wait computed
// from it must not fail a request whose deadline it could still meet.
// Before, 64 callers queued at a probe's low starting rate failed at once.
func TestPaceLearningDoesNotFailRequestsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 200, Burst: 20, Latency: 10 * time.Millisecond})
		_, failed := chainBatch(t, New(api.Transport()), 320, 64, 4500*time.Millisecond, nil)
		if failed != 0 {
			t.Errorf("%d of 320 failed; want none: the batch fits the deadline", failed)
		}
	})
}

// The first throttle's burst counts every accepted request sent before the
// 429 came back. Counting only those sent before the refused one came out
// low (refusals are answered faster than successes), the rate estimate came
// out above the server's, and every estimate cost another cool-down.
func TestPaceEstimateStaysUnderServerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, n = 200, 1000
		api := pacetest.NewAPI(pacetest.Config{Rate: rate, Burst: 20, Latency: 10 * time.Millisecond})
		rt := New(api.Transport())
		chainBatch(t, rt, n, 64, time.Minute, nil)
		// The estimate, not the rate of the moment: a climb past the
		// estimate looks for a raised limit on purpose.
		part := onlyPartition(t, rt)
		part.mu.Lock()
		learned := part.learn.limit
		part.mu.Unlock()
		if learned > rate*1.02 || learned < rate*0.6 {
			t.Errorf("learned limit %.1f, want between 60%% and 102%% of the server's %d", learned, rate)
		}
		// The cold start, the calibration and a climb now and then.
		if refused := api.Stats().Refused; refused > n/50 {
			t.Errorf("%d 429s, want at most %d", refused, n/50)
		}
	})
}

// onlyPartition returns the one pacing partition of rt, built by New.
func onlyPartition(t *testing.T, rt *Transport) *partition {
	t.Helper()
	ps := rt.chain.(*retrier).next.(*pacer).parts
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.m) != 1 {
		t.Fatalf("%d partitions, want 1", len(ps.m))
	}
	for _, p := range ps.m {
		return p
	}
	return nil
}

func countNonZero(xs []int) int {
	n := 0
	for _, x := range xs {
		if x != 0 {
			n++
		}
	}
	return n
}

// A burst of 429s answered together closes one cool-down; hooks hear of it
// once, not once per 429.
func TestPaceOneCoolDownEventPerGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 10, Burst: 5})
		count, coolDowns := eventCounter(EventCoolDown)
		rt := Pace(count)(api.Transport())
		// Under synctest the burst's answers would all be read at one
		// instant; a clock that ticks on each reading spreads them as
		// real answers are, a little apart.
		var ticks atomic.Int64
		rt.(*pacer).now = func() time.Time { return time.Now().Add(time.Duration(ticks.Add(1)) * 100 * time.Microsecond) }
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { send(t, rt, context.Background()) })
		}
		wg.Wait()
		if refused := api.Stats().Refused; refused < 2 {
			t.Fatalf("%d 429s; the test needs a burst of them", refused)
		}
		// The 429s answered together close one gate, and hooks hear of
		// it once.
		if n, refused := int(coolDowns.Load()), api.Stats().Refused; n >= refused {
			t.Errorf("%d cool-down events for %d 429s, want fewer: one per gate", n, refused)
		}
	})
}

// Headers that restate the rate the caller gave used to be taken for a
// change: every waiter was woken to reserve again, and the debt the
// re-reservations piled up held the whole partition for ~150ms.
func TestPaceStatedRateWithHeadersKeepsPace(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  pacetest.Config
		opts []Option
	}{
		{"requests", pacetest.Config{Rate: 200, Burst: 20}, []Option{WithRate(200, 20)}},
		{"tokens", pacetest.Config{Rate: 200, Burst: 20, TokenRate: 8000, TokenBurst: 8000},
			[]Option{WithRate(200, 20), WithTokenRate(8000, 8000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 320
				cfg := tc.cfg
				cfg.Latency, cfg.Dialect = 10*time.Millisecond, pacetest.OpenAI
				api := pacetest.NewAPI(cfg)
				body := func(int) []byte { return []byte(`{"prompt":"` + strings.Repeat("x", 387) + `"}`) } // 100 tokens
				bound := time.Duration(float64(n-20) / 200 * float64(time.Second))
				if cfg.TokenRate > 0 {
					bound = time.Duration(float64(n*100-8000) / 8000 * float64(time.Second))
				}
				elapsed, failed := chainBatch(t, New(api.Transport(), tc.opts...), n, 64, 3*bound, body)
				if failed != 0 || api.Stats().Refused != 0 {
					t.Errorf("%d failed, %d refused; want none", failed, api.Stats().Refused)
				}
				if elapsed > bound*105/100 {
					t.Errorf("took %v, want within 5%% of the bound %v", elapsed, bound)
				}
			})
		})
	}
}

// Clients that do not share a pacer but share a key read the key's full
// limit in the headers. Without a share of it each sent at the full rate,
// met a 429 after every cool-down, and the key saw several times its limit.
func TestPaceIndependentClientsShareHeaderLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, clients, rate = 2000, 4, 200
		api := pacetest.NewAPI(pacetest.Config{Rate: rate, Burst: 20, Latency: 10 * time.Millisecond, Dialect: pacetest.OpenAI})
		rts := make([]http.RoundTripper, clients)
		for i := range rts {
			rts[i] = New(api.Transport())
		}
		var next atomic.Int32
		var wg sync.WaitGroup
		var failed atomic.Int32
		for w := range 32 {
			rt := rts[w%clients]
			wg.Go(func() {
				for next.Add(1) <= n {
					if code, err := send(t, rt, context.Background()); err != nil || code != http.StatusOK {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		st := api.Stats()
		t.Logf("%d refused for %d accepted, timeline %v", st.Refused, st.Accepted, st.Timeline)
		if failed.Load() != 0 {
			t.Errorf("%d failed, want none", failed.Load())
		}
		if perReq := float64(st.Refused) / n; perReq > 0.05 {
			t.Errorf("%.3f 429s per request, want at most 0.05", perReq)
		}
	})
}

// loadCaller is what one of the load test's callers saw.
type loadCaller struct {
	arrive   time.Time
	done     time.Time
	status   int
	err      error
	finished bool
	cancel   context.CancelFunc
}

// TestLoadTenThousandCallers sends 10,000 concurrent requests through one
// transport to a fake API whose limit binds hard: 2,000 requests a second
// with a burst of 2,000, against arrivals at 20,000 a second. It runs under
// synctest over the in-memory transport, so it takes fake seconds and real
// milliseconds, and reports:
//
//   - that every caller completes, with a 200 unless it was cancelled;
//   - the memory each caller costs while it waits;
//   - that cancelling half of the waiting callers releases them at once
//     (no fake time passes) while the rest still finish;
//   - how closely completion order follows arrival order.
//
// The limit is the server's, unknown to the client: the full chain has to
// find it.
func TestLoadTenThousandCallers(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 callers")
	}
	const (
		n       = 10_000
		arrival = 50 * time.Microsecond // between two callers' first attempts
	)
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{Rate: 2000, Burst: 2000})
		defer api.Close()
		rt := New(api.Transport(), WithMaxAttempts(100), WithMaxWait(time.Minute), WithRetryBudget(-1, 0))

		callers := make([]loadCaller, n)
		var mu sync.Mutex // guards callers[i].done, status, err, finished
		var wg sync.WaitGroup
		base := memUse()
		start := time.Now()
		for i := range callers {
			ctx, cancel := context.WithCancel(context.Background())
			callers[i].cancel = cancel
			callers[i].arrive = start.Add(time.Duration(i) * arrival)
			wg.Go(func() {
				defer cancel()
				time.Sleep(time.Until(callers[i].arrive))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/v1", nil)
				resp, err := rt.RoundTrip(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				callers[i].done, callers[i].status, callers[i].err, callers[i].finished = time.Now(), status, err, true
				mu.Unlock()
			})
		}

		// Every caller has arrived; those not yet served wait out a
		// Retry-After, durably blocked.
		time.Sleep(time.Duration(n) * arrival)
		synctest.Wait()
		var waiting []int
		mu.Lock()
		for i := range callers {
			if !callers[i].finished {
				waiting = append(waiting, i)
			}
		}
		mu.Unlock()
		perCaller := (memUse() - base) / uint64(len(waiting))
		t.Logf("after %v: %d of %d callers waiting, %d bytes each (heap and stack)", time.Since(start), len(waiting), n, perCaller)
		if len(waiting) < n/2 {
			t.Fatalf("only %d callers waiting: the limit does not bind", len(waiting))
		}
		// Generous: a goroutine's stack, a request, a timer, a context, and
		// what the race detector adds.
		if perCaller > 64<<10 {
			t.Errorf("%d bytes per waiting caller, want at most 64 KiB", perCaller)
		}

		// Cancel every other waiting caller: each must return at once.
		cancelled := make(map[int]bool)
		for k, i := range waiting {
			if k%2 == 0 {
				cancelled[i] = true
			}
		}
		cancelAt := time.Now()
		for i := range cancelled {
			callers[i].cancel()
		}
		synctest.Wait()
		var late, wrong int
		mu.Lock()
		for i := range cancelled {
			c := &callers[i]
			switch {
			case !c.finished || c.done.Sub(cancelAt) != 0:
				late++
			case !errors.Is(c.err, context.Canceled):
				wrong++
			}
		}
		mu.Unlock()
		if late > 0 || wrong > 0 {
			t.Errorf("of %d cancelled callers, %d not released at once, %d without context.Canceled", len(cancelled), late, wrong)
		}
		t.Logf("cancelled %d waiting callers: released after %v of fake time", len(cancelled), time.Since(cancelAt))

		wg.Wait()
		var served []int
		for i := range callers {
			c := &callers[i]
			switch {
			case cancelled[i]:
			case c.err != nil || c.status != http.StatusOK:
				t.Errorf("caller %d: %d, %v", i, c.status, c.err)
			default:
				served = append(served, i)
			}
		}
		if len(served) != n-len(cancelled) {
			t.Errorf("%d callers served, want %d", len(served), n-len(cancelled))
		}
		st := api.Stats()
		t.Logf("all done after %v of fake time: %d served, %d refusals, %d requests in all", time.Since(start), st.Accepted, st.Refused, st.Requests)

		// Fairness: of the pairs of served callers that finished at
		// different instants, the share that finished in arrival order,
		// and how far completion ranks stray from arrival ranks.
		concordant, pairs := orderAgreement(callers, served)
		displacement := meanDisplacement(callers, served)
		t.Logf("fairness: %.1f%% of pairs finish in arrival order; mean rank displacement %.1f%% of the callers", 100*concordant, 100*displacement)
		// The pacer's budget serves reservations in the order they are
		// made; the rest of the disorder is goroutine scheduling.
		if concordant < 0.8 || pairs == 0 {
			t.Errorf("completion order agrees with arrival order for %.1f%% of pairs, want at least 80%%", 100*concordant)
		}
	})
}

// memUse is the memory in use by the heap and by goroutine stacks, after a
// collection.
func memUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// orderAgreement returns the share of pairs of the served callers, among
// those finishing at different instants, that finished in the order they
// arrived, and the number of such pairs.
func orderAgreement(callers []loadCaller, served []int) (float64, int) {
	var agree, pairs int
	for a, i := range served {
		for _, j := range served[a+1:] { // i arrived before j
			switch callers[i].done.Compare(callers[j].done) {
			case -1:
				agree++
				pairs++
			case 1:
				pairs++
			}
		}
	}
	if pairs == 0 {
		return 0, 0
	}
	return float64(agree) / float64(pairs), pairs
}

// meanDisplacement returns the mean distance between a served caller's
// arrival rank and its completion rank, as a share of the callers served.
func meanDisplacement(callers []loadCaller, served []int) float64 {
	byDone := slices.Clone(served)
	slices.SortStableFunc(byDone, func(i, j int) int { return callers[i].done.Compare(callers[j].done) })
	var sum int
	for rank, i := range byDone {
		arrivalRank, _ := slices.BinarySearch(served, i)
		sum += max(rank-arrivalRank, arrivalRank-rank)
	}
	return float64(sum) / float64(len(served)) / float64(len(served))
}

// The cold start's rounds leave in bursts of at most coldBurst, spread over
// the round trip at twice the delivery rate; small rounds, and the time
// after the cold start, are left alone.
func TestColdSpacing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		burst     int16 // requests of the burst under way
		since     time.Duration
		inFlight  int
		coldEnded bool
		want      time.Duration
	}{
		{name: "burst not full", burst: coldBurst - 1, inFlight: 32},
		{name: "burst full", burst: coldBurst, inFlight: 32, want: 11 * time.Millisecond * coldBurst / 64},
		{name: "burst full, partly waited", burst: coldBurst, since: time.Millisecond, inFlight: 32, want: 11*time.Millisecond*coldBurst/64 - time.Millisecond},
		{name: "burst over", burst: coldBurst, since: 2 * sendSpread, inFlight: 32},
		{name: "cold start over", burst: coldBurst, inFlight: 32, coldEnded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := &partition{inFlight: tc.inFlight, coldRTT: 11 * time.Millisecond,
				learn: newLearner(at(0), 0, 0, 0), burstFrom: at(100).UnixNano(), burstCount: tc.burst}
			part.learn.window = 64
			if tc.coldEnded {
				part.learn.coldEnd = at(90)
			}
			if got := part.coldSpacing(at(100).Add(tc.since)); got != tc.want {
				t.Errorf("wait %v, want %v", got, tc.want)
			}
		})
	}
}

// Over a 1ms network a round of the cold start no longer leaves at once:
// the refusal that ends it is heard after a burst or two, not after the
// whole round (a window of 100 met 27 refusals, one of 50 met 13).
func TestPaceColdStartOverNetwork(t *testing.T) {
	for _, name := range []string{"sliding-window", "fixed-window"} {
		t.Run(name, func(t *testing.T) {
			s, _ := pacetest.ScenarioNamed(name)
			s.Streams[0].Requests = 150
			synctest.Test(t, func(t *testing.T) {
				r := pacetest.Runner{Network: time.Millisecond, Scatter: 200 * time.Microsecond}
				res, err := r.Run(s, func(base http.RoundTripper) http.RoundTripper { return New(base) })
				if err != nil {
					t.Fatal(err)
				}
				// At most the burst that met the quota's end, and the
				// window search's 4 probes.
				if n := res.RefusedTimeline[0]; n > coldBurst+4 {
					t.Errorf("%d refusals in the first second, want at most %d", n, coldBurst+4)
				}
			})
		})
	}
}
