package pacehttp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-retryablehttp"
)

var errUnauthorized = errors.New("unauthorized")

// stopOn401 is a custom policy as retryablehttp users write them: retry
// what the default retries, but fail at once with an error on a 401.
func stopOn401(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if resp != nil && resp.StatusCode == http.StatusUnauthorized {
		return false, errUnauthorized
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

func TestFromRetryablehttp(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		answers []answer
		opts    []RetryOption

		wantCalls  int
		wantStatus int // 0: an error is expected
		wantErr    func(error) bool
		wantGaps   []time.Duration // between attempts; no jitter is added to a retryablehttp backoff
	}{
		{
			name:      "default policy and backoff retry 500s",
			method:    "GET",
			answers:   []answer{status(500), status(502), status(200)},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.DefaultBackoff), WithBackoff(time.Second, 30*time.Second)},
			wantCalls: 3, wantStatus: 200,
			wantGaps: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:      "bounds given before the option count too",
			method:    "GET",
			answers:   []answer{status(500), status(500), status(200)},
			opts:      []RetryOption{WithBackoff(100*time.Millisecond, 150*time.Millisecond), FromRetryablehttp(nil, retryablehttp.DefaultBackoff)},
			wantCalls: 3, wantStatus: 200,
			wantGaps: []time.Duration{100 * time.Millisecond, 150 * time.Millisecond},
		},
		{
			name:      "linear jitter backoff with equal bounds is linear",
			method:    "GET",
			answers:   []answer{status(503), status(503), status(200)},
			opts:      []RetryOption{FromRetryablehttp(nil, retryablehttp.LinearJitterBackoff), WithBackoff(time.Second, time.Second)},
			wantCalls: 3, wantStatus: 200,
			wantGaps: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:      "(false, err) fails the round trip with err",
			method:    "GET",
			answers:   []answer{status(401)},
			opts:      []RetryOption{FromRetryablehttp(stopOn401, nil)},
			wantCalls: 1,
			wantErr:   func(err error) bool { return errors.Is(err, errUnauthorized) },
		},
		{
			name:      "(false, nil) hands back the response",
			method:    "GET",
			answers:   []answer{status(404)},
			opts:      []RetryOption{FromRetryablehttp(stopOn401, nil)},
			wantCalls: 1, wantStatus: 404,
		},
		{
			name:      "(true, err) until attempts run out hands back the last response",
			method:    "GET",
			answers:   []answer{status(500)},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.DefaultBackoff), WithMaxAttempts(3)},
			wantCalls: 3, wantStatus: 500,
			wantGaps: []time.Duration{500 * time.Millisecond, time.Second},
		},
		{
			name:      "policy sees a url.Error and stops on a bad scheme",
			method:    "GET",
			answers:   []answer{{err: errors.New(`unsupported protocol scheme "ftp"`)}},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.ErrorPropagatedRetryPolicy, nil)},
			wantCalls: 1,
			wantErr: func(err error) bool {
				var uerr *url.Error
				return errors.As(err, &uerr) && uerr.Op == "Get"
			},
		},
		{
			name:      "a refused connection is retried, even for a POST",
			method:    "POST",
			answers:   []answer{{err: syscall.ECONNREFUSED}, status(201)},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.DefaultBackoff)},
			wantCalls: 2, wantStatus: 201,
			wantGaps: []time.Duration{500 * time.Millisecond},
		},
		{
			name:      "a POST that met a 500 is not repeated",
			method:    "POST",
			answers:   []answer{status(500), status(201)},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.DefaultBackoff)},
			wantCalls: 1, wantStatus: 500,
		},
		{
			name:      "unless all methods may be retried, as under retryablehttp",
			method:    "POST",
			answers:   []answer{status(500), status(201)},
			opts:      []RetryOption{FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.DefaultBackoff), WithRetryAllMethods()},
			wantCalls: 2, wantStatus: 201,
			wantGaps: []time.Duration{500 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: tt.answers}
				rt := Chain(s, Retry(tt.opts...))
				resp, err := rt.RoundTrip(newRequest(t, context.Background(), tt.method, strings.NewReader("{}")))
				if s.calls != tt.wantCalls {
					t.Errorf("%d attempts, want %d", s.calls, tt.wantCalls)
				}
				switch {
				case tt.wantErr != nil:
					if resp != nil || !tt.wantErr(err) {
						t.Fatalf("RoundTrip = %v, %v; want the error", resp, err)
					}
				case err != nil:
					t.Fatalf("RoundTrip: %v", err)
				default:
					readAll(t, resp)
					if resp.StatusCode != tt.wantStatus {
						t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
					}
				}
				var gaps []time.Duration
				for i := 1; i < len(s.times); i++ {
					gaps = append(gaps, s.times[i].Sub(s.times[i-1]))
				}
				if diff := cmp.Diff(tt.wantGaps, gaps); diff != "" {
					t.Errorf("waits between attempts (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestFromRetryablehttpKeepsHintsAndCaps: a server's Retry-After sets the
// wait, whatever the retryablehttp backoff says, and WithMaxWait still
// bounds it (retryablehttp honours any Retry-After without a cap).
func TestFromRetryablehttpKeepsHintsAndCaps(t *testing.T) {
	policy := FromRetryablehttp(retryablehttp.DefaultRetryPolicy, retryablehttp.LinearJitterBackoff)
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "3"), status(200)}}
		rt := Chain(s, Retry(policy, WithBackoff(time.Millisecond, time.Millisecond)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("{}")))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if gap := s.times[1].Sub(s.times[0]); s.calls != 2 || gap < 3*time.Second || gap > 3300*time.Millisecond {
			t.Errorf("%d attempts, second after %v; want 2, after the 3s the server asked for", s.calls, gap)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "3600"), status(200)}}
		rt := Chain(s, Retry(policy, WithMaxWait(time.Minute)))
		start := time.Now()
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if s.calls != 1 || resp.StatusCode != 429 || time.Since(start) != 0 {
			t.Errorf("%d attempts, status %d, after %v; want the 429 at once", s.calls, resp.StatusCode, time.Since(start))
		}
		if got := resp.Header.Get("X-Should-Retry"); got != "false" {
			t.Errorf("X-Should-Retry = %q, want false", got)
		}
	})
}

// TestCheckRetryErrorClosesResponse: the response a (false, err) decision
// replaces is closed, so its connection is not lost.
func TestCheckRetryErrorClosesResponse(t *testing.T) {
	body := &countingBody{Reader: strings.NewReader("denied")}
	next := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 401, Header: http.Header{}, Body: body, Request: req}, nil
	})
	rt := Chain(next, Retry(FromRetryablehttp(stopOn401, nil)))
	if _, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil)); !errors.Is(err, errUnauthorized) {
		t.Fatalf("err = %v, want errUnauthorized", err)
	}
	if n := body.closes.Load(); n != 1 {
		t.Errorf("response body closed %d times, want once", n)
	}
}
