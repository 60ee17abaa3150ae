package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

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
			// Refused before it left: no attempt was made, none is retried.
			if rerr, ok := errors.AsType[*RetryError](err); !ok || rerr.Attempts != 0 || rerr.Cause != nil {
				t.Errorf("request %d: err = %#v, want no attempt and no retry", i, err)
			}
		}
		if s.calls != 1 {
			t.Errorf("%d calls reached the server, want 1", s.calls)
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
		if !ok || !errors.Is(err, ErrWaitTooLong) || rerr.Attempts != 0 || rerr.Cause != nil {
			t.Errorf("err = %v, want the pacer's refusal before any attempt, not retried", err)
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
	// A high rate floor: the 429s must not slow the pacer to a request a
	// second, which would only make the test wait.
	client := &http.Client{Transport: New(base, WithMaxAttempts(5), WithRateFloor(1000))}
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

func TestFaultHangingServer(t *testing.T) {
	// The handler answers only when the client gives up on it.
	var hits atomic.Int32
	hang := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-r.Context().Done()
	}

	t.Run("attempt timeout retries", func(t *testing.T) {
		hits.Store(0)
		rt, _ := newFaultTransport(t, WithAttemptTimeout(30*time.Millisecond))
		srv, cc := newCountedServer(t, hang)
		start := time.Now()
		_, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.URL, ""))
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAttemptsExhausted) {
			t.Fatalf("err = %v, want deadline exceeded, attempts exhausted", err)
		}
		if got := hits.Load(); got != 3 {
			t.Errorf("hits = %d, want 3", got)
		}
		if el := time.Since(start); el < 90*time.Millisecond {
			t.Errorf("gave up after %v, before three attempt timeouts", el)
		}
		rt.CloseIdleConnections()
		waitZero(t, "server conns", cc.open.Load)
	})

	t.Run("context deadline is final", func(t *testing.T) {
		hits.Store(0)
		rt, _ := newFaultTransport(t)
		srv, cc := newCountedServer(t, hang)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := rt.RoundTrip(faultRequest(t, ctx, http.MethodGet, srv.URL, ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if got := hits.Load(); got != 1 {
			t.Errorf("hits = %d, want 1: a request whose context ended is not retried", got)
		}
		rt.CloseIdleConnections()
		waitZero(t, "server conns", cc.open.Load)
	})
}

func TestFaultSlowDrip(t *testing.T) {
	t.Run("body drips past the attempt timeout", func(t *testing.T) {
		// The attempt timeout bounds the wait for headers only: a body that
		// drips for longer is read to the end, once.
		rt, _ := newFaultTransport(t, WithAttemptTimeout(30*time.Millisecond))
		srv := newRawServer(t, func(c *net.TCPConn) {
			if _, err := readRequest(c); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
			for _, b := range "abcdefgh" {
				time.Sleep(10 * time.Millisecond)
				if _, err := io.WriteString(c, string(b)); err != nil {
					return
				}
			}
		})
		resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.url(), ""))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "abcdefgh" {
			t.Errorf("read %q, %v; want the whole body", b, err)
		}
		if got := srv.accept.Load(); got != 1 {
			t.Errorf("connections = %d, want 1", got)
		}
	})

	t.Run("headers drip past the attempt timeout", func(t *testing.T) {
		// A status line that never finishes is a hung attempt: cut and
		// retried, and the next attempt is answered.
		var n atomic.Int32
		rt, _ := newFaultTransport(t, WithAttemptTimeout(30*time.Millisecond))
		srv := newRawServer(t, func(c *net.TCPConn) {
			if _, err := readRequest(c); err != nil {
				return
			}
			if n.Add(1) > 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return
			}
			for _, b := range "HTTP/1.1 200 OK\r\n" {
				time.Sleep(5 * time.Millisecond)
				if _, err := io.WriteString(c, string(b)); err != nil {
					return
				}
			}
		})
		resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.url(), ""))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" || srv.accept.Load() != 2 {
			t.Errorf("body %q after %d connections, want \"ok\" after 2", b, srv.accept.Load())
		}
		rt.CloseIdleConnections()
		waitZero(t, "server conns", srv.open.Load)
	})
}

func TestFaultHTTP2(t *testing.T) {
	// newH2 starts a TLS server speaking HTTP/2 and returns a chain over a
	// transport that trusts it.
	newH2 := func(t *testing.T, h http.HandlerFunc) (*httptest.Server, *connCounter, *Transport) {
		t.Helper()
		rt, base := newFaultTransport(t)
		cc := &connCounter{}
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.Config.ConnState = cc.track
		srv.StartTLS()
		t.Cleanup(srv.Close)
		base.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		base.ForceAttemptHTTP2 = true
		return srv, cc, rt
	}

	t.Run("GOAWAY after each answer", func(t *testing.T) {
		// With keep-alives off, the server sends GOAWAY as soon as a
		// connection's last stream ends. The retry after a 503 must go out
		// on a new connection and succeed.
		var hits atomic.Int32
		srv, cc, rt := newH2(t, func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 {
				t.Errorf("request over %s, want HTTP/2", r.Proto)
			}
			if hits.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
		})
		srv.Config.SetKeepAlivesEnabled(false)
		resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodPost, srv.URL, "payload"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("answer %d %q, want 200 ok", resp.StatusCode, b)
		}
		if hits.Load() != 2 || cc.total.Load() != 2 {
			t.Errorf("hits = %d over %d connections, want 2 over 2", hits.Load(), cc.total.Load())
		}
		rt.CloseIdleConnections()
		waitZero(t, "server conns", cc.open.Load)
	})

	t.Run("stream reset", func(t *testing.T) {
		// A handler that aborts resets its stream (RST_STREAM): a transport
		// error after the request was sent, so only GET is retried.
		for _, tt := range []struct {
			method string
			want   int32
		}{{http.MethodGet, 3}, {http.MethodPost, 1}} {
			t.Run(tt.method, func(t *testing.T) {
				var hits atomic.Int32
				srv, cc, rt := newH2(t, func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					io.Copy(io.Discard, r.Body)
					panic(http.ErrAbortHandler)
				})
				resp, err := rt.RoundTrip(faultRequest(t, t.Context(), tt.method, srv.URL, "payload"))
				if resp != nil || err == nil {
					t.Fatalf("RoundTrip = %v, %v; want an error", resp, err)
				}
				if got := hits.Load(); got != tt.want {
					t.Errorf("hits = %d, want %d (err %v)", got, tt.want, err)
				}
				rt.CloseIdleConnections()
				waitZero(t, "server conns", cc.open.Load)
			})
		}
	})
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

// outcome is what the fake server does with one attempt.
type outcome int

const (
	outOK       outcome = iota // 200
	outBad                     // 400: final
	outThrottle                // 429 with Retry-After 0: unprocessed
	outOverload                // 503: unprocessed
	outFail                    // 500: may have been processed
	outReset                   // body read, then the connection reset
	outRefused                 // dial refused: nothing sent
	numOutcomes
)

var outcomeStatus = map[outcome]int{outOK: 200, outBad: 400, outThrottle: 429, outOverload: 503, outFail: 500}

var (
	errLostReset   = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	errLostRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
)

// lostCase is one random request and the server's script for it.
type lostCase struct {
	method      string
	key         bool   // carries an Idempotency-Key
	body        []byte // nil: no body
	getBody     bool   // body built by http.NewRequest from bytes
	limit       int64  // WithMaxBufferedBody
	maxAttempts int
	script      []outcome
}

func (c lostCase) String() string {
	return fmt.Sprintf("%s key=%v body=%d getBody=%v limit=%d attempts=%d script=%v",
		c.method, c.key, len(c.body), c.getBody, c.limit, c.maxAttempts, c.script)
}

func randomLostCase(r *rand.Rand) lostCase {
	methods := []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch}
	c := lostCase{
		method:      methods[r.IntN(len(methods))],
		key:         r.IntN(3) == 0,
		getBody:     r.IntN(2) == 0,
		limit:       []int64{0, 16, 64}[r.IntN(3)],
		maxAttempts: 1 + r.IntN(5),
	}
	if r.IntN(4) > 0 {
		c.body = make([]byte, r.IntN(100))
		for i := range c.body {
			c.body[i] = byte(r.Uint32())
		}
	}
	for range c.maxAttempts {
		c.script = append(c.script, outcome(r.IntN(int(numOutcomes))))
	}
	return c
}

// expect is the policy of docs/retry.md applied to c: how many attempts
// reach the server, and the outcome the caller gets.
func (c lostCase) expect() (received int, last outcome) {
	replayable := c.body == nil || c.getBody || int64(len(c.body)) <= c.limit
	idem := c.key
	switch c.method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
		idem = true
	}
	for n, o := range c.script {
		if o != outRefused {
			received++
		}
		var retryable, unprocessed bool
		switch o {
		case outThrottle, outOverload, outRefused:
			retryable, unprocessed = true, true
		case outFail, outReset:
			retryable = true
		}
		if !retryable || n+1 >= c.maxAttempts || !replayable || !unprocessed && !idem {
			return received, o
		}
	}
	panic("script shorter than the attempts allowed")
}

// TestNothingLost is a randomised property test with a fixed seed: for
// every request, each attempt that reaches the server carries the caller's
// exact body; the caller gets the server's last answer or the transport's
// error, never nothing; the server sees the request exactly as often as
// the policy allows (WithMaxAttempts, the idempotency rule, replayability);
// and the caller's body is closed exactly once.
func TestNothingLost(t *testing.T) {
	const iterations = 3000
	r := rand.New(rand.NewPCG(7, 2026))
	synctest.Test(t, func(t *testing.T) {
		for it := range iterations {
			c := randomLostCase(r)
			if err := runLostCase(c); err != nil {
				t.Fatalf("iteration %d: %s: %v", it, c, err)
			}
		}
	})
}

func runLostCase(c lostCase) error {
	var received [][]byte
	n := 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		o := c.script[n]
		n++
		if o == outRefused {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, errLostRefused
		}
		var b []byte
		if req.Body != nil {
			var err error
			if b, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body.Close()
		}
		received = append(received, b)
		if o == outReset {
			return nil, errLostReset
		}
		h := http.Header{}
		if o == outThrottle {
			h.Set("Retry-After", "0")
		}
		return &http.Response{StatusCode: outcomeStatus[o], Header: h, Body: io.NopCloser(bytes.NewReader(nil)), Request: req}, nil
	})
	rt := New(base, WithMaxAttempts(c.maxAttempts), WithMaxBufferedBody(c.limit),
		WithBackoffFunc(func(int) time.Duration { return 10 * time.Millisecond }), WithRetryBudget(-1, 0))

	var caller *countingBody
	var req *http.Request
	var err error
	switch {
	case c.body == nil:
		req, err = http.NewRequest(c.method, "http://api.test/", nil)
	case c.getBody:
		req, err = http.NewRequest(c.method, "http://api.test/", bytes.NewReader(c.body))
	default:
		caller = &countingBody{Reader: bytes.NewReader(c.body)}
		req, err = http.NewRequest(c.method, "http://api.test/", caller)
	}
	if err != nil {
		return err
	}
	if c.key {
		req.Header.Set("Idempotency-Key", "k")
	}
	resp, err := rt.RoundTrip(req)

	wantReceived, wantLast := c.expect()
	if len(received) != wantReceived {
		return fmt.Errorf("server received %d attempts, want %d", len(received), wantReceived)
	}
	for i, b := range received {
		if !bytes.Equal(b, c.body) {
			return fmt.Errorf("attempt %d received %d bytes, not the caller's %d", i+1, len(b), len(c.body))
		}
	}
	if n > c.maxAttempts {
		return fmt.Errorf("%d attempts, more than the %d allowed", n, c.maxAttempts)
	}
	switch wantLast {
	case outReset, outRefused:
		want := error(errLostReset)
		if wantLast == outRefused {
			want = errLostRefused
		}
		if resp != nil || !errors.Is(err, want) {
			return fmt.Errorf("got %v, %v; want the error %v", resp, err, want)
		}
	default:
		if err != nil || resp.StatusCode != outcomeStatus[wantLast] {
			return fmt.Errorf("got %v, %v; want the server's %d", resp, err, outcomeStatus[wantLast])
		}
		resp.Body.Close()
	}
	if caller != nil && caller.closes.Load() != 1 {
		return fmt.Errorf("caller's body closed %d times, want 1", caller.closes.Load())
	}
	return nil
}

// TestNilHeaderOrBody: a base transport may answer with a nil Header or a
// nil Body, as many test doubles do, and http.Client accepts both (a nil
// Body as an empty one). The retry layer must too, on every path: success,
// retry (whose drain runs on a timer goroutine), give-up (which writes a
// header), attempt timeout and a classifier's error. A nil Body with a
// positive Content-Length, and a nil response with a nil error, are refused
// as http.Client refuses them, with an error and no retry.
func TestNilHeaderOrBody(t *testing.T) {
	bare := func(code int, contentLength int64) *http.Response {
		return &http.Response{StatusCode: code, ContentLength: contentLength}
	}
	stop := errors.New("stop")
	tests := []struct {
		name      string
		answers   []*http.Response // the last repeats
		opts      []RetryOption
		wantCalls int
		wantCode  int    // 0: want an error
		wantErr   string // part of the error
	}{
		{"200", []*http.Response{bare(200, 0)}, nil, 1, 200, ""},
		{"200 with unknown length", []*http.Response{bare(200, -1)}, nil, 1, 200, ""},
		{"503 retried, then 200", []*http.Response{bare(503, 0), bare(200, 0)}, nil, 2, 200, ""},
		{"429 given up", []*http.Response{bare(429, 0)}, []RetryOption{WithMaxAttempts(2)}, 2, 429, ""},
		{"attempt timeout, 200", []*http.Response{bare(200, 0)}, []RetryOption{WithAttemptTimeout(time.Second)}, 1, 200, ""},
		{"attempt timeout, 503 retried", []*http.Response{bare(503, 0), bare(200, 0)}, []RetryOption{WithAttemptTimeout(time.Second)}, 2, 200, ""},
		{"classifier error", []*http.Response{bare(503, 0)}, []RetryOption{WithClassifier(func(*http.Request, *http.Response, error) Decision {
			return Decision{Err: stop}
		})}, 1, 0, "stop"},
		{"nil body with a length", []*http.Response{bare(200, 10)}, nil, 1, 0, "content length 10 but a nil Body"},
		{"nil response, nil error", []*http.Response{nil}, nil, 1, 0, "nil *Response with a nil error"},
	}
	for _, tt := range tests {
		for _, layer := range []string{"retry", "chain"} {
			t.Run(tt.name+"/"+layer, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					calls := 0
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						a := tt.answers[min(calls, len(tt.answers)-1)]
						calls++
						if a == nil {
							return nil, nil
						}
						r := *a
						r.Request = req
						return &r, nil
					})
					opts := append([]RetryOption{WithBackoff(time.Millisecond, time.Millisecond)}, tt.opts...)
					rt := Chain(base, Retry(opts...))
					if layer == "chain" {
						all := make([]Option, len(opts))
						for i, o := range opts {
							all[i] = o
						}
						rt = New(base, all...)
					}
					resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
					if calls != tt.wantCalls {
						t.Errorf("%d attempts, want %d", calls, tt.wantCalls)
					}
					if tt.wantCode == 0 {
						if resp != nil || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("RoundTrip = %v, %v; want an error saying %q", resp, err, tt.wantErr)
						}
						if _, ok := errors.AsType[*RetryError](err); !ok {
							t.Errorf("err = %#v, want a *RetryError", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode != tt.wantCode || resp.Header == nil || resp.Body == nil {
						t.Fatalf("got %d, header %v, body %v; want %d with a header and a body", resp.StatusCode, resp.Header, resp.Body, tt.wantCode)
					}
					if got := readAll(t, resp); got != "" {
						t.Errorf("body %q, want empty", got)
					}
					if tt.wantCode == 429 && resp.Header.Get("X-Should-Retry") != "false" {
						t.Errorf("X-Should-Retry = %q, want false", resp.Header.Get("X-Should-Retry"))
					}
				})
			})
		}
	}
}

// TestRequestCancelChannel: the deprecated Request.Cancel, which
// http.Transport still honours, ends the request as the context would:
// during a wait between attempts, at once, and after an attempt that it cut,
// with no retry.
func TestRequestCancelChannel(t *testing.T) {
	t.Run("during a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{answers: []answer{status(429, "Retry-After", "30")}}
			req := newRequest(t, context.Background(), "GET", nil)
			cancel := make(chan struct{})
			req.Cancel = cancel
			time.AfterFunc(time.Second, func() { close(cancel) })
			start := time.Now()
			_, err := Chain(s, Retry()).RoundTrip(req)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want one matching context.Canceled", err)
			}
			if elapsed := time.Since(start); elapsed != time.Second || s.calls != 1 {
				t.Errorf("returned after %v and %d calls, want 1s (the moment of cancellation) and 1", elapsed, s.calls)
			}
		})
	})
	t.Run("cutting an attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// As http.Transport does: the attempt fails when Cancel closes.
			canceled := errors.New("net/http: request canceled")
			var calls atomic.Int32
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				calls.Add(1)
				<-req.Cancel
				return nil, canceled
			})
			req := newRequest(t, context.Background(), "GET", nil)
			cancel := make(chan struct{})
			req.Cancel = cancel
			time.AfterFunc(time.Second, func() { close(cancel) })
			_, err := Chain(base, Retry()).RoundTrip(req)
			if !errors.Is(err, canceled) || calls.Load() != 1 {
				t.Errorf("err = %v after %d calls, want the transport's error after 1: a cancelled request is not retried", err, calls.Load())
			}
		})
	})
}

// TestAttemptTimeoutExcludesPacerQueue: the attempt timeout runs from the
// moment the attempt leaves the pacer, not while it waits in the pacer's
// queue. A POST held there past the timeout was once cut before it left,
// taken for a hung server, and given up as not idempotent.
func TestAttemptTimeoutExcludesPacerQueue(t *testing.T) {
	chains := map[string]func(base http.RoundTripper) http.RoundTripper{
		"New": func(base http.RoundTripper) http.RoundTripper {
			return New(base, WithRate(0.2, 1), WithAttemptTimeout(time.Second))
		},
		"Retry over Pace": func(base http.RoundTripper) http.RoundTripper {
			return Chain(base, Retry(WithAttemptTimeout(time.Second)), Pace(WithRate(0.2, 1)))
		},
	}
	for name, chain := range chains {
		t.Run(name+"/answered", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{status(200)}}
				rt := chain(s)
				resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("first")))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				// The burst is spent: the next request waits 5s in the queue.
				start := time.Now()
				resp, err = rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("second")))
				if err != nil {
					t.Fatalf("err = %v, want the 200: the attempt waited in the queue, it did not hang", err)
				}
				readAll(t, resp)
				if elapsed := time.Since(start); s.calls != 2 || elapsed != 5*time.Second {
					t.Errorf("%d calls, second answered after %v; want 2 calls and 5s in the queue", s.calls, elapsed)
				}
			})
		})
		t.Run(name+"/hung", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The second attempt leaves after 5s in the queue and hangs:
				// it is cut 1s after it left, not 1s after it was made.
				var sent, cut []time.Time
				start := time.Now()
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					sent = append(sent, time.Now())
					if len(sent) == 1 {
						return status(200).response(req)
					}
					<-req.Context().Done()
					cut = append(cut, time.Now())
					return nil, req.Context().Err()
				})
				rt := chain(base)
				resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second+1500*time.Millisecond)
				defer cancel()
				_, err = rt.RoundTrip(newRequest(t, ctx, "GET", nil))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the attempt timeout", err)
				}
				if len(sent) < 2 || sent[1].Sub(start) != 5*time.Second {
					t.Fatalf("attempts sent at %v, want the second after 5s", sent)
				}
				if len(cut) == 0 || cut[0].Sub(start) != 6*time.Second {
					t.Errorf("second attempt cut at %v, want 6s after the start: 1s after it left the queue", cut)
				}
			})
		})
	}
}

// TestClockSkewedServer: a server whose clock is an hour behind asks, by
// HTTP-date, for 30s. The wait is measured from its Date, not from the
// local clock, by which the date is long past.
func TestClockSkewedServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		serverClock := time.Now().Add(-time.Hour)
		s := &script{answers: []answer{
			status(429, "Date", serverClock.Format(http.TimeFormat), "Retry-After", serverClock.Add(30*time.Second).Format(http.TimeFormat)),
			status(200),
		}}
		start := time.Now()
		resp, err := Chain(s, Retry()).RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		// 30s, plus upward jitter of at most a second.
		if w := s.times[1].Sub(start); s.calls != 2 || w < 30*time.Second || w >= 31*time.Second {
			t.Errorf("second attempt after %v (%d calls), want 30s plus jitter", w, s.calls)
		}
	})
}

// TestBodyHintHoldsEveryCaller: Google's wait is in the 429's body, where
// the pacer does not read. The refused attempt still waits all of it, and
// the partition's gate holds a caller that comes meanwhile as long: no
// probe goes early.
func TestBodyHintHoldsEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refusal := answer{status: http.StatusTooManyRequests, header: http.Header{"Content-Type": {"application/json"}},
			body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[` +
				`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}`}
		s := &script{answers: []answer{refusal, status(200)}}
		rt := New(s)
		start := time.Now()
		call := func() {
			resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
			if err != nil {
				t.Error(err)
				return
			}
			readAll(t, resp)
		}
		done := make(chan struct{})
		go func() { call(); close(done) }()
		synctest.Wait() // refused, and waiting
		time.Sleep(time.Second)
		call()
		<-done
		if len(s.times) != 3 {
			t.Fatalf("%d attempts, want 3", len(s.times))
		}
		for i, at := range s.times[1:] {
			if d := at.Sub(start); d < 17*time.Second || d > 17*time.Second*11/10 {
				t.Errorf("attempt %d left %v after the refusal; want the 17s RetryInfo asked for, plus at most a tenth", i+2, d)
			}
		}
	})
}

// TestGateLongerThanHintHandsBackTheAnswer: a request's 429 asks for 1s,
// but another's asked for 10s and the partition's gate holds everyone that
// long, past this request's deadline. It gives up with its own 429, as it
// would for a wait of its own past the deadline, instead of a WaitError
// from the pacer once the answer was discarded.
func TestGateLongerThanHintHandsBackTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch calls.Add(1) {
			case 1:
				time.Sleep(10 * time.Millisecond)
				return status(http.StatusTooManyRequests, "Retry-After", "10").response(req)
			case 2:
				time.Sleep(20 * time.Millisecond)
				return status(http.StatusTooManyRequests, "Retry-After", "1").response(req)
			}
			return status(200).response(req)
		})
		rt := New(base, WithRate(100, 10))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil)); err == nil {
				readAll(t, resp)
			}
		}()
		synctest.Wait() // the first request is out
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := rt.RoundTrip(newRequest(t, ctx, "GET", nil))
		if err != nil {
			t.Fatalf("err = %v, want the 429 the server answered", err)
		}
		readAll(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("status %d, Retry-After %q; want this request's own 429, Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("%d attempts reached the server, want 2", n)
		}
		<-done // the first request's retry, after the 10s it was asked to wait
	})
}
