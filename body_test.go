package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBodyReplay(t *testing.T) {
	const payload = `{"model":"m","max_tokens":10}`
	tests := []struct {
		name      string
		body      func() io.Reader
		limit     int64
		wantCalls int
		wantSent  []string
	}{
		{"GetBody", func() io.Reader { return strings.NewReader(payload) }, DefaultMaxBufferedBody,
			3, []string{payload, payload, payload}},
		{"plain reader buffered", func() io.Reader { return struct{ io.Reader }{strings.NewReader(payload)} },
			DefaultMaxBufferedBody, 3, []string{payload, payload, payload}},
		{"plain reader at limit", func() io.Reader { return struct{ io.Reader }{strings.NewReader(payload)} },
			int64(len(payload)), 3, []string{payload, payload, payload}},
		{"oversize sent once", func() io.Reader { return struct{ io.Reader }{strings.NewReader(payload)} },
			int64(len(payload) - 1), 1, []string{payload}},
		{"buffering disabled", func() io.Reader { return struct{ io.Reader }{strings.NewReader(payload)} },
			0, 1, []string{payload}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{status(503)}}
				var reasons []string
				rt := Chain(s, Retry(WithMaxAttempts(3), WithMaxBufferedBody(tt.limit),
					WithHook(func(e Event) {
						if e.Kind == EventGiveUp {
							reasons = append(reasons, e.Reason)
						}
					})))
				body := &countingBody{Reader: tt.body()}
				req := newRequest(t, context.Background(), "PUT", body)
				if _, isStrings := tt.body().(*strings.Reader); isStrings {
					req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
				}
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if diff := cmp.Diff(tt.wantSent, s.sent()); diff != "" {
					t.Errorf("bodies sent (-want +got):\n%s", diff)
				}
				if n := body.closes.Load(); n != 1 {
					t.Errorf("caller's body closed %d times, want 1", n)
				}
				if s.calls != tt.wantCalls {
					t.Errorf("%d attempts, want %d", s.calls, tt.wantCalls)
				}
				if tt.wantCalls == 1 && (len(reasons) != 1 || !strings.Contains(reasons[0], ErrBodyNotReplayable.Error())) {
					t.Errorf("give-up reasons %q, want one naming %q", reasons, ErrBodyNotReplayable)
				}
			})
		})
	}
}

// failingReader fails after its content, as a broken upload would.
type failingReader struct{ r io.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("disk on fire")
	}
	return n, err
}

// TestBodyReadErrorClosesBody: a body that fails while it is buffered is
// closed, nothing is sent, and the error is a *RetryError like every error
// of the retry layer (errors.go), after no attempt.
func TestBodyReadErrorClosesBody(t *testing.T) {
	s := &script{answers: []answer{status(200)}}
	body := &countingBody{Reader: failingReader{strings.NewReader("abc")}}
	_, err := Chain(s, Retry()).RoundTrip(newRequest(t, context.Background(), "POST", body))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want the read error", err)
	}
	if rerr, ok := errors.AsType[*RetryError](err); !ok || rerr.Attempts != 0 || rerr.Cause != nil {
		t.Errorf("err = %#v, want a *RetryError after 0 attempts, with no cause", err)
	}
	if body.closes.Load() != 1 || s.calls != 0 {
		t.Errorf("closes %d, calls %d; want 1 and 0", body.closes.Load(), s.calls)
	}
}

// FuzzReplayBody drives the body replay path with random bodies, with and
// without GetBody, random buffering limits and a random script of failures.
// Every attempt that reaches the transport must carry exactly the caller's
// bytes; a body that cannot be replayed is sent once; the caller's body is
// closed exactly once; and the request is attempted exactly as often as the
// script and the attempt limit allow.
func FuzzReplayBody(f *testing.F) {
	f.Add([]byte(`{"model":"m"}`), false, uint16(8), uint8(5), uint16(0b0101))
	f.Add([]byte(`{"model":"m"}`), true, uint16(0), uint8(3), uint16(0b11))
	f.Add([]byte("0123456789"), false, uint16(4), uint8(4), uint16(0b111))
	f.Add([]byte{}, false, uint16(0), uint8(2), uint16(1))
	f.Add(bytes.Repeat([]byte{0}, 1000), false, uint16(999), uint8(2), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, withGetBody bool, limit uint16, maxAttempts uint8, script uint16) {
		// script: two bits per attempt, from the lowest: 0 a 200, 1 a 503,
		// 2 a reset after the body was read, 3 a refused dial (body closed
		// unread, as a transport does on a dial error).
		attemptsAllowed := int(maxAttempts%6) + 1
		caller := &countingBody{Reader: bytes.NewReader(data)}
		req, err := http.NewRequest(http.MethodPost, "http://api.test/", caller)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Idempotency-Key", "k") // every failure is retryable
		var getBodies []*countingBody
		if withGetBody {
			req.GetBody = func() (io.ReadCloser, error) {
				b := &countingBody{Reader: bytes.NewReader(data)}
				getBodies = append(getBodies, b)
				return b, nil
			}
		}

		var sent [][]byte
		n := 0
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			step := (script >> (2 * min(n, 7))) & 3
			n++
			if step == 3 {
				r.Body.Close()
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			b, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				return nil, err
			}
			sent = append(sent, b)
			switch step {
			case 1:
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			case 2:
				return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		rt := New(base, WithMaxAttempts(attemptsAllowed), WithMaxBufferedBody(int64(limit)),
			WithBackoffFunc(func(int) time.Duration { return 0 }), WithRetryBudget(-1, 0))
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}

		// What the policy allows: attempts until a 200 or the limit, or a
		// single one if the body is neither re-gettable nor small enough.
		replayable := withGetBody || len(data) <= int(limit)
		want := 0
		for want < attemptsAllowed {
			step := (script >> (2 * min(want, 7))) & 3
			want++
			if step == 0 || !replayable {
				break
			}
		}
		if n != want {
			t.Errorf("%d attempts, want %d (replayable %v, allowed %d)", n, want, replayable, attemptsAllowed)
		}
		for i, b := range sent {
			if !bytes.Equal(b, data) {
				t.Fatalf("attempt %d sent %d bytes that differ from the caller's %d", i+1, len(b), len(data))
			}
		}
		if (resp == nil) == (err == nil) {
			t.Errorf("RoundTrip = %v, %v: want exactly one of them", resp, err)
		}
		if c := caller.closes.Load(); c != 1 {
			t.Errorf("caller's body closed %d times, want 1", c)
		}
		for i, b := range getBodies {
			if c := b.closes.Load(); c != 1 {
				t.Errorf("GetBody body %d closed %d times, want 1", i+1, c)
			}
		}
		if req.Body != caller || req.Header.Get("Idempotency-Key") != "k" || len(req.Header) != 1 {
			t.Error("caller's request modified")
		}
	})
}

// TestBodyReplayAnyLimit: every buffering limit a caller may pass either
// buffers the body or sends it once, never an empty or cut one. A limit of
// math.MaxInt64 once sent an empty body: the probe for one byte past the
// limit overflowed.
func TestBodyReplayAnyLimit(t *testing.T) {
	const payload = `{"model":"m","max_tokens":10}`
	tests := []struct {
		limit     int64
		wantCalls int // with a 503 first: 2 if the body is replayed
	}{
		{math.MaxInt64, 2},
		{math.MaxInt64 - 1, 2},
		{math.MaxInt64 / 2, 2},
		{int64(len(payload)), 2},
		{int64(len(payload)) - 1, 1},
		{0, 1},
		{-1, 1},
		{math.MinInt64, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{status(503), status(200)}}
				body := &countingBody{Reader: strings.NewReader(payload)}
				rt := Chain(s, Retry(WithMaxBufferedBody(tt.limit)))
				resp, err := rt.RoundTrip(newRequest(t, context.Background(), "PUT", body))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				want := []string{payload, payload}[:tt.wantCalls]
				if diff := cmp.Diff(want, s.sent()); diff != "" {
					t.Errorf("bodies sent (-want +got):\n%s", diff)
				}
				if n := body.closes.Load(); n != 1 {
					t.Errorf("caller's body closed %d times, want 1", n)
				}
			})
		})
	}
}

// TestGetBodyFailureHandsBackLastAnswer: when GetBody fails for the next
// attempt, the caller gets what the server last said (its answer intact,
// or its transport error), not only GetBody's error with the answer
// drained away. GetBody is called before the wait, so that the answer is
// still there to hand back.
func TestGetBodyFailureHandsBackLastAnswer(t *testing.T) {
	gone := errors.New("spool file gone")
	getBody := func() (io.ReadCloser, error) { return nil, gone }

	t.Run("response", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{answers: []answer{status(503, "Retry-After", "1", "X-Custom", "kept"), status(200)}}
			var events []Event
			rt := Chain(s, Retry(WithHook(func(e Event) { events = append(events, e) })))
			req := newRequest(t, context.Background(), "PUT", strings.NewReader("payload"))
			req.GetBody = getBody
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatalf("err = %v, want the 503", err)
			}
			if got := readAll(t, resp); resp.StatusCode != 503 || got != `{"status":503}` || resp.Header.Get("X-Custom") != "kept" {
				t.Errorf("got %d %q, headers %v; want the server's 503 intact", resp.StatusCode, got, resp.Header)
			}
			if resp.Header.Get("X-Should-Retry") != "false" {
				t.Errorf("X-Should-Retry = %q, want false", resp.Header.Get("X-Should-Retry"))
			}
			if s.calls != 1 || time.Since(start) != 0 {
				t.Errorf("%d calls after %v, want 1 at once", s.calls, time.Since(start))
			}
			last := events[len(events)-1]
			if last.Kind != EventGiveUp || last.Reason != "status 503: "+ErrBodyNotReplayable.Error() {
				t.Errorf("last event %v %q, want a give-up naming %q", last.Kind, last.Reason, ErrBodyNotReplayable)
			}
		})
	})

	t.Run("transport error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			s := &script{answers: []answer{{err: reset}, status(200)}}
			req := newRequest(t, context.Background(), "PUT", strings.NewReader("payload"))
			req.GetBody = getBody
			_, err := Chain(s, Retry()).RoundTrip(req)
			rerr, ok := errors.AsType[*RetryError](err)
			if !ok || rerr.Attempts != 1 || !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("err = %v, want a *RetryError after 1 attempt wrapping the reset", err)
			}
			if !errors.Is(rerr.Cause, ErrBodyNotReplayable) || !errors.Is(err, gone) {
				t.Errorf("cause = %v, want it to match ErrBodyNotReplayable and GetBody's error", rerr.Cause)
			}
			if s.calls != 1 {
				t.Errorf("%d calls, want 1", s.calls)
			}
		})
	})
}

// TestPreparedBodyClosedWhenWaitEnds: the body GetBody gave for the next
// attempt is closed when that attempt is never made.
func TestPreparedBodyClosedWhenWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(503, "Retry-After", "10")}}
		var bodies []*countingBody
		req := newRequest(t, context.Background(), "PUT", strings.NewReader("payload"))
		req.GetBody = func() (io.ReadCloser, error) {
			b := &countingBody{Reader: strings.NewReader("payload")}
			bodies = append(bodies, b)
			return b, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := Chain(s, Retry()).RoundTrip(req.WithContext(ctx))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		for i, b := range bodies {
			if n := b.closes.Load(); n != 1 {
				t.Errorf("GetBody body %d closed %d times, want 1", i+1, n)
			}
		}
	})
}
