package pacehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func get(rt http.RoundTripper, ctx context.Context, header ...string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/v1/items", nil)
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

// Pace alone, over any transport: requests wait for their turn instead of
// meeting 429s.
func ExamplePace() {
	api := pacetest.NewAPI(pacetest.Config{Rate: 100, Burst: 5})
	defer api.Close()
	rt := pacehttp.Pace(pacehttp.WithRate(100, 5))(api.Transport())
	for range 10 {
		get(rt, context.Background())
	}
	fmt.Println("refused:", api.Stats().Refused)
	// Output: refused: 0
}

// With rate-limit headers, the pacer needs no configuration: the first
// answer states the limits.
func ExamplePace_headers() {
	api := pacetest.NewAPI(pacetest.Config{Rate: 100, Burst: 5, Dialect: pacetest.OpenAI})
	defer api.Close()
	rt := pacehttp.Pace()(api.Transport())
	for range 20 {
		get(rt, context.Background())
	}
	fmt.Println("refused:", api.Stats().Refused)
	// Output: refused: 0
}

func ExampleWithRate() {
	rt := pacehttp.Pace(pacehttp.WithRate(50, 1))(http.DefaultTransport)
	_ = &http.Client{Transport: rt} // at most 50 requests per second per partition
}

func ExampleWithTokenRate() {
	// An LLM API allowing 500 requests and 40,000 input tokens a minute.
	client := pacehttp.NewClient(
		pacehttp.WithRate(500.0/60, 50),
		pacehttp.WithTokenRate(40000.0/60, 40000),
	)
	_ = client
}

func ExampleWithConcurrency() {
	api := pacetest.NewAPI(pacetest.Config{Latency: 10 * time.Millisecond})
	defer api.Close()
	rt := pacehttp.Pace(pacehttp.WithConcurrency(2))(api.Transport())
	done := make(chan struct{})
	for range 6 {
		go func() { get(rt, context.Background()); done <- struct{}{} }()
	}
	for range 6 {
		<-done
	}
	fmt.Println("peak concurrency:", api.Stats().PeakConcurrency)
	// Output: peak concurrency: 2
}

func ExampleWithKeyFunc() {
	// One budget per tenant, whatever credential it uses.
	rt := pacehttp.Pace(pacehttp.WithKeyFunc(func(r *http.Request) string {
		return r.Header.Get("X-Tenant")
	}))(http.DefaultTransport)
	_ = rt
}

func ExampleWithCostFunc() {
	// Requests declare their own size.
	rt := pacehttp.Pace(
		pacehttp.WithTokenRate(1000, 1000),
		pacehttp.WithCostFunc(func(r *http.Request) int {
			var n int
			fmt.Sscan(r.Header.Get("X-Estimated-Tokens"), &n)
			return n
		}),
	)(http.DefaultTransport)
	_ = rt
}

func ExampleWithRateFloor() {
	// Never learn a rate below 5 requests a second.
	_ = pacehttp.Pace(pacehttp.WithRateFloor(5))
}

func ExampleWithPartitionExpiry() {
	// Forget what was learned about a key unused for an hour.
	_ = pacehttp.Pace(pacehttp.WithPartitionExpiry(time.Hour))
}

// Each model a request names has its own partition by default: a model
// whose budget is spent does not hold up another. Told that one limit
// covers every model of the key, the pacer holds the second request, here
// past its caller's deadline.
func ExampleWithModelPartitions() {
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	chat := func(rt http.RoundTripper, model string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://api.example/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`","messages":[]}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := rt.RoundTrip(req)
		if _, ok := errors.AsType[*pacehttp.WaitError](err); ok {
			return "held past the deadline"
		} else if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return "sent"
	}
	for _, byModel := range []bool{true, false} {
		rt := pacehttp.Pace(pacehttp.WithRate(1, 1), pacehttp.WithModelPartitions(byModel))(ok)
		fmt.Printf("by model %v: %s; %s\n", byModel, chat(rt, "gpt-4o"), chat(rt, "gpt-4o-mini"))
	}
	// Output:
	// by model true: sent; sent
	// by model false: sent; held past the deadline
}

func ExampleWithMaxPartitions() {
	// Keep the state of at most 1,000 limits (keys and models); past
	// that, the one unused for longest is dropped.
	_ = pacehttp.Pace(pacehttp.WithMaxPartitions(1000))
}

// countingLimiter wraps the budgets of another Limiter; a fleet-wide one
// would keep them in a shared store instead.
type countingLimiter struct {
	pacehttp.Limiter
	budgets int
}

func (l *countingLimiter) Budget(key string) pacehttp.Budget {
	l.budgets++
	return l.Limiter.Budget(key)
}

func ExampleWithLimiter() {
	api := pacetest.NewAPI(pacetest.Config{})
	defer api.Close()
	lim := &countingLimiter{Limiter: pacehttp.NewLocalLimiter()}
	rt := pacehttp.Pace(pacehttp.WithLimiter(lim), pacehttp.WithRate(1000, 10))(api.Transport())
	get(rt, context.Background(), "Authorization", "Bearer a")
	get(rt, context.Background(), "Authorization", "Bearer b")
	get(rt, context.Background(), "Authorization", "Bearer a")
	fmt.Println("budgets:", lim.budgets)
	// Output: budgets: 2
}

// A request whose deadline is too close for its turn fails at once.
func ExampleWaitError() {
	api := pacetest.NewAPI(pacetest.Config{})
	defer api.Close()
	rt := pacehttp.Pace(pacehttp.WithRate(1, 1))(api.Transport())
	get(rt, context.Background()) // the next turn is a second away

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := get(rt, ctx)
	var we *pacehttp.WaitError
	fmt.Println(errors.As(err, &we), errors.Is(err, context.DeadlineExceeded), errors.Is(err, pacehttp.ErrWaitPastDeadline))
	// Output: true true true
}

// A Budget used directly, with the time passed in: two requests a second,
// bursts of two, and a cool-down.
func ExampleNewLocalLimiter() {
	ctx := context.Background()
	b := pacehttp.NewLocalLimiter().Budget("api.example")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.SetLimits(ctx, t0, pacehttp.Limits{Requests: pacehttp.BucketLimits{Rate: 2, Burst: 2, Remaining: -1}})
	for range 3 {
		wait, _, _ := b.Reserve(ctx, t0, 1, 0)
		fmt.Println(wait)
	}
	b.CoolDown(ctx, t0, t0.Add(5*time.Second))
	wait, _, _ := b.Reserve(ctx, t0, 1, 0)
	fmt.Println(wait)
	// Output:
	// 0s
	// 0s
	// 500ms
	// 5s
}

// Processes that share a Limiter must name partitions alike: with the same
// secret, the same credential gets the same hashed partition name in each.
func ExampleWithPartitionSecret() {
	api := pacetest.NewAPI(pacetest.Config{})
	defer api.Close()
	secret := []byte("from your secret store")
	names := make([]string, 2)
	for i := range names {
		// A burst of one: the second request waits, and its EventPaced
		// names the partition.
		rt := pacehttp.Pace(pacehttp.WithPartitionSecret(secret), pacehttp.WithRate(100, 1),
			pacehttp.WithHook(func(e pacehttp.Event) { names[i] = e.Partition }))(api.Transport())
		get(rt, context.Background(), "Authorization", "Bearer sk-live-123")
		get(rt, context.Background(), "Authorization", "Bearer sk-live-123")
	}
	fmt.Println(names[0] == names[1], names[0] != "")
	// Output: true true
}
