package pacehttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// Hostile hints run through the whole chain under testing/synctest, over
// the in-memory transport of a Scripted server, so that the fake clock
// measures every wait exactly: an ignored hint shows as the fixed backoff
// (hostileBackoff), an honoured one as its own length plus upward jitter,
// and a give-up as no time at all.

const (
	hostileBackoff = 7 * time.Second  // the wait when a hint is ignored
	hostileMaxWait = 10 * time.Second // WithMaxWait of every case
)

func hostileOpts(extra ...Option) []Option {
	return append([]Option{
		WithMaxAttempts(2),
		WithMaxWait(hostileMaxWait),
		WithBackoffFunc(func(int) time.Duration { return hostileBackoff }),
		WithRetryBudget(-1, 0),
	}, extra...)
}

func TestHostileHints(t *testing.T) {
	const (
		ignored  = iota // malformed: as if absent, so the fixed backoff
		honoured        // a valid wait within the cap: slept, plus jitter
		giveUp          // valid but beyond the cap: the 429 at once
	)
	farFuture := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Format(http.TimeFormat)
	farPast := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	tests := []struct {
		name   string
		header []string
		want   int
		wait   time.Duration // for honoured: the hint
	}{
		{"retry-after 1e18 (exponent form)", []string{"Retry-After", "1e18"}, ignored, 0},
		{"retry-after 10^18 seconds", []string{"Retry-After", "1" + strings.Repeat("0", 18)}, giveUp, 0},
		{"retry-after -5", []string{"Retry-After", "-5"}, ignored, 0},
		{"retry-after NaN", []string{"Retry-After", "NaN"}, ignored, 0},
		{"retry-after Infinity", []string{"Retry-After", "Infinity"}, ignored, 0},
		{"retry-after +Inf", []string{"Retry-After", "+Inf"}, ignored, 0},
		{"retry-after 500 digits", []string{"Retry-After", strings.Repeat("9", 500)}, giveUp, 0},
		{"retry-after 500 digits of fraction", []string{"Retry-After", "1." + strings.Repeat("9", 500)}, honoured, 2 * time.Second},
		{"retry-after year 9999", []string{"Retry-After", farFuture}, giveUp, 0},
		{"retry-after year 1900", []string{"Retry-After", farPast}, honoured, 0},
		{"retry-after empty", []string{"Retry-After", ""}, ignored, 0},
		{"retry-after NUL bytes", []string{"Retry-After", "1\x002"}, ignored, 0},
		{"retry-after folded list", []string{"Retry-After", "2, 7"}, ignored, 0},
		{"retry-after-ms negative", []string{"retry-after-ms", "-1"}, ignored, 0},
		{"retry-after-ms 30 digits", []string{"retry-after-ms", strings.Repeat("9", 30)}, giveUp, 0},
		{"retry-after just under the cap", []string{"Retry-After", "9.99"}, honoured, 9990 * time.Millisecond},
		{"retry-after just over the cap", []string{"Retry-After", "10.001"}, giveUp, 0},
		{"reset epoch far past", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "500000000"}, honoured, 0},
		{"reset epoch far future", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "99999999999"}, giveUp, 0},
		{"reset epoch 40 digits", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", strings.Repeat("9", 40)}, giveUp, 0},
		{"reset epoch negative", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "-1"}, ignored, 0},
		{"anthropic reset year 9999", []string{"anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"}, giveUp, 0},
		{"openai reset 99999999h", []string{"x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "99999999h"}, giveUp, 0},
		{"ratelimit empty t", []string{"RateLimit", `"default";r=0;t=`}, ignored, 0},
		{"ratelimit trailing commas", []string{"RateLimit", `"default";r=0;t=5,,`}, ignored, 0},
		{"ratelimit negative t", []string{"RateLimit", `default;r=0;t=-3`}, ignored, 0},
		{"ratelimit exponent t", []string{"RateLimit", `"d";r=0;t=1e9`}, ignored, 0},
		{"ratelimit unterminated string", []string{"RateLimit", `"d;r=0;t=5`}, ignored, 0},
		{"ratelimit valid", []string{"RateLimit", `"d";r=0;t=5`}, honoured, 5 * time.Second},
		{"ratelimit-reset exponent", []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "1e3"}, ignored, 0},
		{"repeated retry-after, largest wins", []string{"Retry-After", "1", "Retry-After", "3"}, honoured, 3 * time.Second},
		{"repeated retry-after, garbage skipped", []string{"Retry-After", "garbage", "Retry-After", "3"}, honoured, 3 * time.Second},
		{"repeated retry-after, one huge", []string{"Retry-After", "1", "Retry-After", strings.Repeat("9", 100)}, giveUp, 0},
		{"bad retry-after-ms falls back to retry-after", []string{"retry-after-ms", "NaN", "Retry-After", "2"}, honoured, 2 * time.Second},
		{"remaining conflicts: the fewer wins", []string{"X-Ratelimit-Remaining", "5", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "500000000"}, honoured, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := pacetest.NewScripted(pacetest.Status(http.StatusTooManyRequests, tt.header...), pacetest.OK("done"))
				defer sc.Close()
				rt := New(sc.Transport(), hostileOpts()...)
				start := time.Now()
				resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				elapsed, hits := time.Since(start), len(sc.Requests())
				if elapsed > hostileMaxWait {
					t.Errorf("waited %v, beyond the max wait %v", elapsed, hostileMaxWait)
				}
				switch tt.want {
				case ignored:
					if resp.StatusCode != 200 || hits != 2 || elapsed != hostileBackoff {
						t.Errorf("got %d after %d hits and %v; want the hint ignored: 200 after 2 hits and the backoff %v", resp.StatusCode, hits, elapsed, hostileBackoff)
					}
				case honoured:
					// Upward jitter only: a tenth of the wait, 50ms to 1s.
					spread := min(max(tt.wait/10, 50*time.Millisecond), time.Second)
					if resp.StatusCode != 200 || hits != 2 || elapsed < tt.wait || elapsed >= min(tt.wait+spread, hostileMaxWait+1) {
						t.Errorf("got %d after %d hits and %v; want 200 after 2 hits and [%v, %v)", resp.StatusCode, hits, elapsed, tt.wait, tt.wait+spread)
					}
				case giveUp:
					if resp.StatusCode != 429 || hits != 1 || elapsed != 0 || resp.Header.Get("X-Should-Retry") != "false" {
						t.Errorf("got %d (X-Should-Retry %q) after %d hits and %v; want the 429 at once, after 1 hit", resp.StatusCode, resp.Header.Get("X-Should-Retry"), hits, elapsed)
					}
				}
			})
		})
	}
}

// hugeBody is a body of n bytes that exists only as it is read. It counts
// the bytes read and whether it was closed.
type hugeBody struct {
	prefix string // sent first, e.g. the start of a JSON object
	n      int64  // total size
	read   atomic.Int64
	closed atomic.Int32
}

func (b *hugeBody) Read(p []byte) (int, error) {
	off := b.read.Load()
	if off >= b.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.n-off)]
	for i := range p {
		if j := off + int64(i); j < int64(len(b.prefix)) {
			p[i] = b.prefix[j]
		} else {
			p[i] = ' '
		}
	}
	b.read.Add(int64(len(p)))
	return len(p), nil
}

func (b *hugeBody) Close() error { b.closed.Add(1); return nil }

func TestHostileHugeErrorBody(t *testing.T) {
	// A 1 GiB error body, never allocated. Whether it is searched for a
	// Google RetryInfo (a 429 with a JSON type), drained for connection
	// reuse, or handed back as the final answer, pacehttp reads at most
	// what it peeks plus what it drains: 128 KiB per attempt.
	const gib = 1 << 30
	const bound = maxErrorBodyPeek + maxDrain
	tests := []struct {
		name        string
		status      int
		contentType string
		header      []string
	}{
		{"429 json, no header hint", 429, "application/json", nil},
		{"429 json, header hint", 429, "application/json", []string{"Retry-After", "1"}},
		{"503 text", 503, "text/plain", nil},
		{"429 json array", 429, "application/json; charset=utf-8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var bodies []*hugeBody
				rt := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
					b := &hugeBody{prefix: `{"error":{"code":429,"details":[`, n: gib}
					if strings.Contains(tt.name, "array") {
						b.prefix = "[" + b.prefix
					}
					bodies = append(bodies, b)
					h := http.Header{"Content-Type": {tt.contentType}}
					for i := 0; i+1 < len(tt.header); i += 2 {
						h.Set(tt.header[i], tt.header[i+1])
					}
					return &http.Response{StatusCode: tt.status, Header: h, Body: b, ContentLength: gib, Request: req}, nil
				}), hostileOpts(WithMaxAttempts(3), WithBackoffFunc(func(int) time.Duration { return time.Second }))...)
				resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
				if err != nil {
					t.Fatal(err)
				}
				// The final answer is the caller's to read, from its first byte.
				head := make([]byte, 10)
				if _, err := io.ReadFull(resp.Body, head); err != nil || !strings.HasPrefix(bodies[len(bodies)-1].prefix, string(head)) {
					t.Errorf("final body starts %q, %v; want it whole", head, err)
				}
				resp.Body.Close()
				if len(bodies) != 3 {
					t.Fatalf("%d attempts, want 3", len(bodies))
				}
				for i, b := range bodies {
					if n := b.read.Load(); n > bound {
						t.Errorf("attempt %d: read %d bytes of the body, want at most %d", i+1, n, bound)
					}
					if c := b.closed.Load(); c != 1 {
						t.Errorf("attempt %d: body closed %d times, want 1", i+1, c)
					}
				}
				t.Logf("bytes read per attempt: %d, %d, %d (final, incl. the caller's 10)", bodies[0].read.Load(), bodies[1].read.Load(), bodies[2].read.Load())
			})
		})
	}
}

func TestHostileHugeHintWithoutMaxWait(t *testing.T) {
	// With no cap (WithMaxWait(0)) a valid but huge hint is slept, as the
	// server asked, until the context ends or its deadline rules it out. The
	// upward jitter added to a saturated hint must not wrap the wait into a
	// negative one, which would turn the refusal into an immediate retry.
	huge := []string{"Retry-After", strings.Repeat("9", 500)}

	t.Run("no deadline: waits until cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sc := pacetest.NewScripted(pacetest.Status(http.StatusTooManyRequests, huge...), pacetest.OK("done"))
			defer sc.Close()
			rt := New(sc.Transport(), hostileOpts(WithMaxAttempts(3), WithMaxWait(0))...)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				resp, err := rt.RoundTrip(faultRequest(t, ctx, http.MethodGet, "http://api.test/", ""))
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			time.Sleep(24 * time.Hour)
			synctest.Wait()
			if hits := len(sc.Requests()); hits != 1 {
				t.Errorf("after a day, %d hits; want 1, still waiting as told", hits)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	})

	t.Run("deadline: gives up at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sc := pacetest.NewScripted(pacetest.Status(http.StatusTooManyRequests, huge...), pacetest.OK("done"))
			defer sc.Close()
			rt := New(sc.Transport(), hostileOpts(WithMaxAttempts(3), WithMaxWait(0))...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			start := time.Now()
			resp, err := rt.RoundTrip(faultRequest(t, ctx, http.MethodGet, "http://api.test/", ""))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if hits := len(sc.Requests()); resp.StatusCode != 429 || hits != 1 || time.Since(start) != 0 {
				t.Errorf("got %d after %d hits and %v; want the 429 at once after 1 hit", resp.StatusCode, hits, time.Since(start))
			}
		})
	})
}

func TestHostileDrippingErrorBody(t *testing.T) {
	// An error answer that will be retried is drained before the wait, for
	// connection reuse. A hostile server that drips that body a byte an
	// hour must not hold the request past the wait it asked for, nor past
	// WithMaxWait, nor keep the server's handler running.
	synctest.Test(t, func(t *testing.T) {
		drip := pacetest.Step{
			Status:   http.StatusServiceUnavailable,
			Header:   http.Header{"Retry-After": {"1"}},
			Stream:   []string{"a", "b", "c", "d", "e"},
			Interval: time.Hour,
		}
		sc := pacetest.NewScripted(drip, pacetest.OK("done"))
		defer sc.Close()
		rt := New(sc.Transport(), hostileOpts(WithAttemptTimeout(5*time.Second))...)
		start := time.Now()
		resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Retry-After 1 plus upward jitter of at most 100ms.
		if elapsed, hits := time.Since(start), len(sc.Requests()); resp.StatusCode != 200 || hits != 2 || elapsed < time.Second || elapsed > 1100*time.Millisecond {
			t.Errorf("got %d after %d hits and %v; want 200 after 2 hits and about 1s", resp.StatusCode, hits, elapsed)
		}
	})
}

func TestHostileDrippingErrorBodyPeek(t *testing.T) {
	// A 429 with a JSON body and no header hint is read, a little, for a
	// Google RetryInfo. A body that drips must not hold the request there
	// beyond maxErrorBodyWait either.
	synctest.Test(t, func(t *testing.T) {
		drip := pacetest.Step{
			Status:   http.StatusTooManyRequests,
			Header:   http.Header{"Content-Type": {"application/json"}},
			Stream:   []string{`{"error":`, `{"code":429}}`},
			Interval: time.Hour,
		}
		sc := pacetest.NewScripted(drip, pacetest.OK("done"))
		defer sc.Close()
		// The retry layer alone: a 429 with no hint would also teach a
		// pacer, whose learning is not what this test times.
		rt := Chain(sc.Transport(), Retry(WithBackoff(time.Millisecond, time.Millisecond)))
		start := time.Now()
		resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if elapsed, hits := time.Since(start), len(sc.Requests()); resp.StatusCode != 200 || hits != 2 || elapsed > time.Second+100*time.Millisecond {
			t.Errorf("got %d after %d hits and %v; want 200 after 2 hits within about 1s", resp.StatusCode, hits, elapsed)
		}
	})
}
