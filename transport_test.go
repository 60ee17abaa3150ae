package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// answer is one scripted outcome of an attempt: a response or an error.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func (a answer) response(req *http.Request) (*http.Response, error) {
	if a.err != nil {
		return nil, a.err
	}
	h := http.Header{}
	for k, v := range a.header {
		h[k] = append([]string(nil), v...)
	}
	return &http.Response{
		StatusCode: a.status, Status: http.StatusText(a.status), Header: h,
		Body: io.NopCloser(strings.NewReader(a.body)), Request: req,
		ContentLength: int64(len(a.body)),
	}, nil
}

func status(code int, kv ...string) answer {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return answer{status: code, header: h, body: fmt.Sprintf(`{"status":%d}`, code)}
}

// script is an in-memory transport that plays answers in order (the last
// repeats) and records what each attempt sent. It behaves as a transport
// must: it reads and closes every request body.
type script struct {
	answers []answer

	mu     sync.Mutex
	bodies []string
	times  []time.Time
	calls  int
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	s.bodies = append(s.bodies, string(body))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	return a.response(req)
}

func (s *script) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// countingBody is a caller's request body that counts its Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

func newRequest(t *testing.T, ctx context.Context, method string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://api.test/v1/things", body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRetriesUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{
			status(429, "Retry-After", "2"),
			status(503),
			status(200),
		}}
		rt := Chain(s, Retry())
		start := time.Now()
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 || s.calls != 3 {
			t.Fatalf("status %d after %d calls, want 200 after 3", resp.StatusCode, s.calls)
		}
		if got := s.times[1].Sub(start); got < 2*time.Second || got > 2*time.Second+200*time.Millisecond {
			t.Errorf("second attempt after %v, want 2s plus at most 200ms of upward jitter", got)
		}
	})
}

func TestGivesUpWithLastResponseIntact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "1", "X-Custom", "kept")}}
		var events []EventKind
		rt := Chain(s, Retry(WithMaxAttempts(3), WithHook(func(e Event) { events = append(events, e.Kind) })))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 429 || s.calls != 3 {
			t.Fatalf("status %d after %d calls, want 429 after 3", resp.StatusCode, s.calls)
		}
		if got := readAll(t, resp); got != `{"status":429}` {
			t.Errorf("body %q, want the server's", got)
		}
		if resp.Header.Get("X-Custom") != "kept" || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("headers lost: %v", resp.Header)
		}
		if got := resp.Header.Get("X-Should-Retry"); got != "false" {
			t.Errorf("X-Should-Retry = %q, want false", got)
		}
		want := []EventKind{EventAttempt, EventRetry, EventAttempt, EventRetry, EventAttempt, EventGiveUp}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestDecisions(t *testing.T) {
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name   string
		method string
		header []string
		first  answer
		calls  int // attempts made with WithMaxAttempts(2)
	}{
		{"429 retried", "GET", nil, status(429), 2},
		{"503 retried", "GET", nil, status(503), 2},
		{"529 retried", "GET", nil, status(529), 2},
		{"500 retried", "GET", nil, status(500), 2},
		{"404 final", "GET", nil, status(404), 1},
		{"400 final", "POST", nil, status(400), 1},
		{"x-should-retry false beats 503", "GET", nil, status(503, "X-Should-Retry", "false"), 1},
		{"x-should-retry true makes 409 retryable", "GET", nil, status(409, "X-Should-Retry", "true"), 2},
		{"403 with rate-limit hint", "GET", nil, status(403, "Retry-After", "1"), 2},
		{"403 plain final", "GET", nil, status(403), 1},
		{"POST 429 retried: not processed", "POST", nil, status(429), 2},
		{"POST 529 retried: not processed", "POST", nil, status(529), 2},
		{"POST 500 not retried", "POST", nil, status(500), 1},
		{"POST 429 with x-should-retry true (Anthropic)", "POST", nil, status(429, "X-Should-Retry", "true", "Retry-After", "0"), 2},
		{"POST 529 with x-should-retry true (Anthropic)", "POST", nil, status(529, "X-Should-Retry", "true"), 2},
		{"POST 500 with x-should-retry true: the server vouches", "POST", nil, status(500, "X-Should-Retry", "true"), 2},
		{"POST 500 with Idempotency-Key", "POST", []string{"Idempotency-Key", "k1"}, status(500), 2},
		{"POST refused dial retried", "POST", nil, answer{err: dialRefused}, 2},
		{"POST reset not retried", "POST", nil, answer{err: reset}, 1},
		{"GET reset retried", "GET", nil, answer{err: reset}, 2},
		{"bad scheme final", "GET", nil, answer{err: errors.New("unsupported protocol scheme \"ftp\"")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{tt.first, status(200)}}
				rt := Chain(s, Retry(WithMaxAttempts(2)))
				req := newRequest(t, context.Background(), tt.method, strings.NewReader("body"))
				for i := 0; i+1 < len(tt.header); i += 2 {
					req.Header.Set(tt.header[i], tt.header[i+1])
				}
				resp, err := rt.RoundTrip(req)
				if err == nil {
					readAll(t, resp)
				}
				if s.calls != tt.calls {
					t.Errorf("%d attempts, want %d", s.calls, tt.calls)
				}
			})
		})
	}
}

func TestRetryAllMethods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(500), status(200)}}
		rt := Chain(s, Retry(WithRetryAllMethods()))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if s.calls != 2 {
			t.Errorf("%d attempts, want 2", s.calls)
		}
	})
}

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

func TestBodyReadErrorClosesBody(t *testing.T) {
	s := &script{answers: []answer{status(200)}}
	body := &countingBody{Reader: failingReader{strings.NewReader("abc")}}
	_, err := Chain(s, Retry()).RoundTrip(newRequest(t, context.Background(), "POST", body))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want the read error", err)
	}
	if body.closes.Load() != 1 || s.calls != 0 {
		t.Errorf("closes %d, calls %d; want 1 and 0", body.closes.Load(), s.calls)
	}
}

func TestCallerRequestNotMutated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429), status(200)}}
		req := newRequest(t, context.Background(), "POST", struct{ io.Reader }{strings.NewReader("payload")})
		req.Header.Set("Authorization", "Bearer secret")
		snapshot := fmt.Sprintf("%v %v %v %d %v", req.Method, req.URL, req.Header, req.ContentLength, req.Body)
		resp, err := Chain(s, Retry()).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if got := fmt.Sprintf("%v %v %v %d %v", req.Method, req.URL, req.Header, req.ContentLength, req.Body); got != snapshot {
			t.Errorf("request changed:\n got %s\nwant %s", got, snapshot)
		}
		if req.GetBody != nil {
			t.Error("GetBody was set on the caller's request")
		}
	})
}

func TestWaitCaps(t *testing.T) {
	tests := []struct {
		name     string
		answer   answer
		opts     []RetryOption
		deadline time.Duration
		want     error
	}{
		{"hint over max wait", status(429, "Retry-After", "120"), []RetryOption{WithMaxWait(time.Minute)}, 0, ErrWaitTooLong},
		{"huge hint", status(429, "Retry-After", "1000000000000000000"), nil, 0, ErrWaitTooLong},
		{"hint past deadline", status(429, "Retry-After", "10"), nil, 5 * time.Second, ErrWaitPastDeadline},
		{"backoff past deadline", status(503), []RetryOption{WithBackoffFunc(func(int) time.Duration { return time.Minute })}, 5 * time.Second, ErrWaitPastDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{tt.answer, status(200)}}
				var reason string
				opts := append(tt.opts, WithHook(func(e Event) {
					if e.Kind == EventGiveUp {
						reason = e.Reason
					}
				}))
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				resp, err := Chain(s, Retry(opts...)).RoundTrip(newRequest(t, ctx, "GET", nil))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if elapsed := time.Since(start); elapsed != 0 {
					t.Errorf("gave up after %v, want at once", elapsed)
				}
				if s.calls != 1 || resp.Header.Get("X-Should-Retry") != "false" {
					t.Errorf("calls %d, X-Should-Retry %q; want 1 and false", s.calls, resp.Header.Get("X-Should-Retry"))
				}
				if tt.want != nil && !strings.Contains(reason, tt.want.Error()) {
					t.Errorf("reason %q, want it to name %q", reason, tt.want)
				}
			})
		})
	}
}

func TestCancelDuringWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "30")}}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := Chain(s, Retry()).RoundTrip(newRequest(t, ctx, "GET", nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Errorf("returned after %v, want 1s (the moment of cancellation)", elapsed)
		}
	})
}

func TestTransportErrorWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		s := &script{answers: []answer{{err: reset}}}
		_, err := Chain(s, Retry(WithMaxAttempts(3))).RoundTrip(newRequest(t, context.Background(), "GET", nil))
		var rerr *RetryError
		if !errors.As(err, &rerr) || rerr.Attempts != 3 {
			t.Fatalf("err = %v, want a *RetryError after 3 attempts", err)
		}
		if !errors.Is(err, syscall.ECONNRESET) || !errors.Is(err, ErrAttemptsExhausted) {
			t.Errorf("err = %v, want it to match ECONNRESET and ErrAttemptsExhausted", err)
		}
	})
}

func TestBackoffFullJitterBounds(t *testing.T) {
	b := fullJitter(100*time.Millisecond, time.Second)
	for n, bound := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 80: time.Second, 1 << 30: time.Second} {
		var maxSeen time.Duration
		for range 500 {
			w := b(n)
			if w < 0 || w > bound {
				t.Fatalf("retry %d: wait %v outside [0, %v]", n, w, bound)
			}
			maxSeen = max(maxSeen, w)
		}
		if maxSeen < bound/2 {
			t.Errorf("retry %d: 500 draws never above %v; jitter should span [0, %v]", n, maxSeen, bound)
		}
	}
	if w := fullJitter(0, time.Second)(3); w != 0 {
		t.Errorf("zero minimum gave %v, want 0", w)
	}
}

func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(500)}}
		rt := Chain(s, Retry(WithRetryBudget(0, 2), WithMaxAttempts(10), WithBackoff(time.Millisecond, time.Millisecond)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		// The floor allows two unhinted retries in this second, then stops.
		if s.calls != 3 {
			t.Errorf("%d attempts, want 3 (one plus the floor of 2 retries)", s.calls)
		}
	})
}

func TestHintedRetriesIgnoreBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "1")}}
		rt := Chain(s, Retry(WithRetryBudget(0, 0), WithMaxAttempts(4)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if s.calls != 4 {
			t.Errorf("%d attempts, want 4", s.calls)
		}
	})
}

// blockingRT answers only when its request's context ends, like a server
// that never responds.
type blockingRT struct{ calls atomic.Int32 }

func (b *blockingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	<-req.Context().Done()
	return nil, req.Context().Err()
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blockingRT{}
		rt := Chain(b, Retry(WithAttemptTimeout(time.Second), WithMaxAttempts(3), WithBackoff(time.Millisecond, time.Millisecond)))
		_, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if !errors.Is(err, ErrAttemptsExhausted) || b.calls.Load() != 3 {
			t.Errorf("err %v after %d calls, want attempts exhausted after 3", err, b.calls.Load())
		}
	})
}

func TestAttemptTimeoutDoesNotCutBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		rt := Chain(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr, Request: req}, nil
		}), Retry(WithAttemptTimeout(time.Second)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(5 * time.Second) // longer than the attempt timeout
			pw.Write([]byte("late"))
			pw.Close()
		}()
		if got := readAll(t, resp); got != "late" {
			t.Errorf("body %q, want the streamed one", got)
		}
	})
}

func TestStreamingBodyUntouched(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	rt := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr, Request: req}, nil
	}))
	resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("{}")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// RoundTrip returned before the stream produced a byte: nothing read it.
	go pw.Write([]byte("data: first\n\n"))
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "data: first\n\n" {
		t.Fatalf("read %q, %v; want the first event", buf[:n], err)
	}
}

func TestConnectionReusedAcrossRetries(t *testing.T) {
	var conns atomic.Int32
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 4 {
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":"slow down"}`)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: New(base, WithMaxAttempts(5))}
	resp, err := client.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{"a":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "ok" || calls.Load() != 4 {
		t.Fatalf("body %q after %d calls, want ok after 4", got, calls.Load())
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 4 attempts, want 1: discarded answers must be drained", n)
	}
}

func TestChainOrderAndNilBase(t *testing.T) {
	var order []string
	mark := func(name string) Middleware {
		return func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				order = append(order, name)
				return next.RoundTrip(r)
			})
		}
	}
	s := &script{answers: []answer{status(200)}}
	resp, err := Chain(s, mark("a"), mark("b")).RoundTrip(newRequest(t, context.Background(), "GET", nil))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if diff := cmp.Diff([]string{"a", "b"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if Chain(nil) != http.DefaultTransport {
		t.Error("Chain(nil) is not http.DefaultTransport")
	}
}

func TestGoogleBodyHint(t *testing.T) {
	const retryInfo = `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"}]}}`
	const daily = `{"error":{"code":429,"details":[` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"}]}}`
	big := `{"error":{"message":"` + strings.Repeat("x", maxErrorBodyPeek) + `"}}`
	json := http.Header{"Content-Type": {"application/json; charset=UTF-8"}}
	tests := []struct {
		name      string
		body      string
		wantCalls int
		wantWait  time.Duration // before the second attempt
	}{
		{"RetryInfo honoured", retryInfo, 2, 22 * time.Second},
		{"daily quota final", daily, 1, 0},
		{"oversized body: backoff", big, 2, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{{status: 429, header: json, body: tt.body}, status(200)}}
				start := time.Now()
				resp, err := Chain(s, Retry(WithMaxAttempts(2))).RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("{}")))
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, resp)
				if s.calls != tt.wantCalls {
					t.Fatalf("%d attempts, want %d", s.calls, tt.wantCalls)
				}
				if tt.wantCalls == 1 && got != tt.body {
					t.Errorf("body handed back has %d bytes, want the server's %d", len(got), len(tt.body))
				}
				if tt.wantWait > 0 {
					if w := s.times[1].Sub(start); w < tt.wantWait || w > tt.wantWait+time.Second {
						t.Errorf("waited %v, want %v plus jitter", w, tt.wantWait)
					}
				}
			})
		})
	}
}

func TestBodyHintKeepsBodyWhole(t *testing.T) {
	big := `{"error":{"message":"` + strings.Repeat("y", 3*maxErrorBodyPeek) + `"}}`
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(big))}
	if _, ok, _ := bodyHint(resp); ok {
		t.Error("hint found in an oversized body")
	}
	if got := readAll(t, resp); got != big {
		t.Errorf("body after peek has %d bytes, want %d", len(got), len(big))
	}
}

func TestJitterNeverPushesAHintPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for range 50 {
			s := &script{answers: []answer{status(429, "Retry-After", "10"), status(200)}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+10*time.Millisecond)
			resp, err := Chain(s, Retry()).RoundTrip(newRequest(t, ctx, "GET", nil))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: a hint that fits the deadline must be waited for", resp.StatusCode)
			}
		}
	})
}

func TestPacerWaitErrorIsFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(200)}}
		rt := New(s, WithRate(1, 1), WithMaxWait(100*time.Millisecond))
		for i, want := range []error{nil, ErrWaitTooLong} {
			resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
			if want == nil {
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				continue
			}
			var werr *WaitError
			if !errors.As(err, &werr) || !errors.Is(err, want) {
				t.Fatalf("request %d: err = %v, want a *WaitError matching %v", i, err, want)
			}
			if rerr, ok := errors.AsType[*RetryError](err); !ok || rerr.Attempts != 1 || rerr.Cause != nil {
				t.Errorf("request %d: err = %#v, want one attempt and no retry", i, err)
			}
		}
		if s.calls != 1 {
			t.Errorf("%d calls reached the server, want 1", s.calls)
		}
	})
}

func TestRefusedRetryDoesNotSpendBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(503), status(503), status(200)}}
		// A floor of one unhinted retry a second and no share of requests:
		// one retry to spend in this instant.
		rt := Chain(s, Retry(WithRetryBudget(0, 1), WithBackoffFunc(func(int) time.Duration { return 10 * time.Millisecond })))
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		resp, err := rt.RoundTrip(newRequest(t, ctx, "GET", nil)) // its retry would pass the deadline
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		resp, err = rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 || s.calls != 3 {
			t.Errorf("second request: %d after %d calls in all, want 200 after 3: the refused retry spent the budget", resp.StatusCode, s.calls)
		}
	})
}

func TestPacerRefusalFinalWhateverTheClassifier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(200)}}
		// Retries every transport error, whatever it is.
		always := func(_ *http.Request, _ *http.Response, err error) Decision {
			return Decision{Retry: err != nil, Reason: "any error"}
		}
		rt := New(s, WithClassifier(always), WithRate(1, 1), WithMaxWait(100*time.Millisecond))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil)) // spends the burst
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		_, err = rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		rerr, ok := errors.AsType[*RetryError](err)
		if !ok || !errors.Is(err, ErrWaitTooLong) || rerr.Attempts != 1 || rerr.Cause != nil {
			t.Errorf("err = %v, want the pacer's refusal after one attempt, not retried", err)
		}
	})
}

// dripBody gives its prefix, then blocks until closed.
type dripBody struct {
	prefix io.Reader
	closed chan struct{}
	once   sync.Once
}

func (b *dripBody) Read(p []byte) (int, error) {
	if n, err := b.prefix.Read(p); err != io.EOF {
		return n, err
	}
	<-b.closed
	return 0, errors.New("closed")
}

func (b *dripBody) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

func TestBodyHintCutShortKeepsWhatWasRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &dripBody{prefix: strings.NewReader(`{"error":`), closed: make(chan struct{})}
		resp := &http.Response{StatusCode: 429, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
		if _, ok, _ := bodyHint(resp); ok {
			t.Fatal("a hint from a body cut short")
		}
		got, _ := io.ReadAll(resp.Body)
		if string(got) != `{"error":` {
			t.Errorf("body after the peek reads %q, want what the server had sent", got)
		}
	})
}
