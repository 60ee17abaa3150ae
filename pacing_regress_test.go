package pacehttp

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

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
