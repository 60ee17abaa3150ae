package pacehttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

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
