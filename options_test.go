package pacehttp

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// hostileDurations and hostileFloats are the values every option taking
// one is tried with: signs, zero, the extremes and, for floats, NaN and the
// infinities.
var (
	hostileDurations = []time.Duration{math.MinInt64, -time.Second, -1, 0, 1, time.Millisecond, time.Hour, math.MaxInt64 - 1, math.MaxInt64}
	hostileFloats    = []float64{math.Inf(-1), -math.MaxFloat64, -1, 0, math.SmallestNonzeroFloat64, 0.5, 1, 1e9, math.MaxFloat64, math.Inf(1), math.NaN()}
	hostileInts      = []int{math.MinInt, -1, 0, 1, 2, math.MaxInt}
)

// TestRetryOptionsHostileValues builds the retry layer with every option at
// every hostile value and sends a request that fails twice (a 503 with no
// hint, so that backoff, budget and caps all have their say) before a 200.
// No value may panic, and the caller gets exactly one of a response and an
// error, after no more attempts than allowed.
func TestRetryOptionsHostileValues(t *testing.T) {
	type tc struct {
		name     string
		opt      RetryOption
		attempts int // the attempts allowed; 0: DefaultMaxAttempts
	}
	var cases []tc
	for _, d := range hostileDurations {
		cases = append(cases,
			tc{name: fmt.Sprintf("WithMaxWait(%d)", d), opt: WithMaxWait(d)},
			tc{name: fmt.Sprintf("WithAttemptTimeout(%d)", d), opt: WithAttemptTimeout(d)},
			tc{name: fmt.Sprintf("WithMaxBufferedBody(%d)", d), opt: WithMaxBufferedBody(int64(d))},
		)
		for _, d2 := range hostileDurations {
			cases = append(cases, tc{name: fmt.Sprintf("WithBackoff(%d,%d)", d, d2), opt: WithBackoff(d, d2)})
		}
		cases = append(cases, tc{name: fmt.Sprintf("WithBackoffFunc(returns %d)", d), opt: WithBackoffFunc(func(int) time.Duration { return d })})
	}
	for _, n := range hostileInts {
		cases = append(cases, tc{name: fmt.Sprintf("WithMaxAttempts(%d)", n), opt: WithMaxAttempts(n), attempts: max(min(n, 3), 1)})
	}
	for _, f := range hostileFloats {
		for _, f2 := range hostileFloats {
			cases = append(cases, tc{name: fmt.Sprintf("WithRetryBudget(%g,%g)", f, f2), opt: WithRetryBudget(f, f2)})
		}
	}
	cases = append(cases,
		tc{name: "WithClassifier(nil)", opt: WithClassifier(nil)},
		tc{name: "WithBackoffFunc(nil)", opt: WithBackoffFunc(nil)},
		tc{name: "WithHook(nil)", opt: WithHook(nil)},
		tc{name: "FromRetryablehttp(nil, nil)", opt: FromRetryablehttp(nil, nil)},
		tc{name: "nil option", opt: nil},
		tc{name: "classifier with a negative hint", opt: WithClassifier(func(*http.Request, *http.Response, error) Decision {
			return Decision{Retry: true, Reason: "test", Hint: Hint{Wait: -time.Hour, Source: "test"}}
		})},
		tc{name: "classifier with a huge hint", opt: WithClassifier(func(*http.Request, *http.Response, error) Decision {
			return Decision{Retry: true, Reason: "test", Hint: Hint{Wait: math.MaxInt64, Source: "test"}}
		})},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("panic: %v", p)
					}
				}()
				s := &script{answers: []answer{status(503), status(503), status(200)}}
				// A deadline bounds the fake time a huge wait may take.
				ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
				defer cancel()
				// Three attempts unless the option under test says otherwise.
				resp, err := Chain(s, Retry(WithMaxAttempts(3), c.opt)).RoundTrip(newRequest(t, ctx, "GET", nil))
				if (resp == nil) == (err == nil) {
					t.Fatalf("RoundTrip = %v, %v; want exactly one of them", resp, err)
				}
				if resp != nil {
					readAll(t, resp)
				}
				allowed := c.attempts
				if allowed == 0 {
					allowed = 3
				}
				if s.calls < 1 || s.calls > allowed {
					t.Errorf("%d attempts, want 1 to %d", s.calls, allowed)
				}
			})
		})
	}
}

// TestBackoffBoundsClamped: WithBackoff's documented clamping, checked on
// the backoff itself for every pair of hostile bounds and retries far past
// the point where doubling overflows: negative bounds count as zero, a
// minimum above the maximum is cut to it, and no wait leaves [0, max].
func TestBackoffBoundsClamped(t *testing.T) {
	for _, lo := range hostileDurations {
		for _, hi := range hostileDurations {
			c := newConfig([]RetryOption{WithBackoff(lo, hi)})
			b := fullJitter(c.backoffMin, c.backoffMax)
			for _, n := range []int{1, 2, 3, 62, 63, 64, 65, 1 << 30, math.MaxInt} {
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Errorf("WithBackoff(%v, %v), retry %d: panic: %v", lo, hi, n, p)
						}
					}()
					if w := b(n); w < 0 || w > max(hi, 0) || lo <= 0 && w != 0 {
						t.Errorf("WithBackoff(%v, %v), retry %d: wait %v, want within [0, %v] (0 if min <= 0)", lo, hi, n, w, max(hi, 0))
					}
				}()
			}
		}
	}
}

// TestRetryOptionClamping: the documented reading of out-of-range values.
func TestRetryOptionClamping(t *testing.T) {
	tests := []struct {
		name  string
		opt   RetryOption
		check func(c *config) bool
	}{
		{"WithMaxAttempts(0) is one attempt", WithMaxAttempts(0), func(c *config) bool { return c.maxAttempts == 1 }},
		{"WithMaxAttempts(MinInt) is one attempt", WithMaxAttempts(math.MinInt), func(c *config) bool { return c.maxAttempts == 1 }},
		{"WithBackoff negative bounds are zero", WithBackoff(-time.Second, math.MinInt64), func(c *config) bool { return c.backoffMin == 0 && c.backoffMax == 0 }},
		{"WithMaxBufferedBody(-1) is no buffering", WithMaxBufferedBody(-1), func(c *config) bool { return c.maxBufferedBody == 0 }},
		{"WithRetryBudget(NaN, 1) has a zero ratio", WithRetryBudget(math.NaN(), 1), func(c *config) bool { return c.budgetRatio == 0 && c.budgetFloor == 1 }},
		{"WithClassifier(nil) keeps the default", WithClassifier(nil), func(c *config) bool { return c.classify == nil }},
		{"WithBackoffFunc(nil) keeps the default", WithBackoffFunc(nil), func(c *config) bool { return c.backoff == nil }},
		{"WithHook(nil) is ignored", WithHook(nil), func(c *config) bool { return c.hook == nil }},
	}
	for _, tt := range tests {
		if c := newConfig([]RetryOption{tt.opt}); !tt.check(c) {
			t.Errorf("%s: config %+v", tt.name, *c)
		}
	}
}
