package pacehttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The transport faults of the gauntlet run over real loopback sockets, with
// a base *http.Transport of the test's own so that its idle connections can
// be closed and every goroutine accounted for. Waits are kept to
// milliseconds: backoff is fixed and small, and the retry budget is off so
// that counts depend only on the policy under test.

// faultOpts are the options every fault test shares.
func faultOpts(extra ...Option) []Option {
	return append([]Option{
		WithMaxAttempts(3),
		WithBackoffFunc(func(int) time.Duration { return time.Millisecond }),
		WithRetryBudget(-1, 0),
	}, extra...)
}

// newFaultTransport returns the full chain over a fresh base transport and
// registers the leak checks: when the test ends, idle connections are
// closed and no goroutine started during the test may remain.
func newFaultTransport(t *testing.T, opts ...Option) (*Transport, *http.Transport) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	base := &http.Transport{}
	rt := New(base, faultOpts(opts...)...)
	t.Cleanup(func() {
		rt.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
	return rt, base
}

// rawServer is a loopback listener whose every connection is handed to
// serve, for faults below HTTP: resets, truncation, drips. It counts
// accepted connections and those still open.
type rawServer struct {
	ln     net.Listener
	serve  func(c *net.TCPConn)
	wg     sync.WaitGroup
	accept atomic.Int32
	open   atomic.Int32
}

func newRawServer(t *testing.T, serve func(c *net.TCPConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, serve: serve}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accept.Add(1)
			s.open.Add(1)
			s.wg.Go(func() {
				defer s.open.Add(-1)
				defer c.Close()
				s.serve(c.(*net.TCPConn))
			})
		}
	})
	// Tests create their transport first, so that this cleanup runs before
	// its leak check: the server is gone before goroutines are counted.
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/" }

// reset drops c with an RST rather than a FIN.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// readRequest reads one whole request from c, body included, and returns
// the body.
func readRequest(c net.Conn) ([]byte, error) {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// faultRequest builds a request with a replayable body, as http.NewRequest
// does for a strings.Reader.
func faultRequest(t *testing.T, ctx context.Context, method, url, body string, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// waitZero polls n until it reaches zero: the server side of a connection
// learns of its closing asynchronously.
func waitZero(t *testing.T, what string, n func() int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d still open", what, n())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFaultConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	// A refused dial is unprocessed: even a POST is retried.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			count, attempts := eventCounter(EventAttempt)
			rt, _ := newFaultTransport(t, count)
			resp, err := rt.RoundTrip(faultRequest(t, t.Context(), method, "http://"+addr+"/", "payload"))
			if resp != nil {
				t.Fatalf("got a response: %v", resp.Status)
			}
			var re *RetryError
			if !errors.As(err, &re) || !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, ErrAttemptsExhausted) {
				t.Fatalf("err = %v, want a *RetryError wrapping ECONNREFUSED and ErrAttemptsExhausted", err)
			}
			if got := attempts.Load(); got != 3 || re.Attempts != 3 {
				t.Errorf("attempts = %d (RetryError says %d), want 3", got, re.Attempts)
			}
		})
	}
}

func TestFaultResetBeforeRequestWritten(t *testing.T) {
	// The server drops each connection with an RST as soon as it is
	// accepted. Depending on timing the client sees it while connecting (a
	// dial error: nothing was sent, so even a POST is retried) or after
	// writing (the client cannot tell how much got through: an ordinary
	// transport error, retried for GET, final for POST). So a POST may be
	// retried only after dial failures, and gives up at its first other
	// failure.
	tests := []struct {
		method  string
		header  []string
		anyFail bool // every failure may be retried, not only dial ones
	}{
		{http.MethodGet, nil, true},
		{http.MethodPost, nil, false},
		{http.MethodPost, []string{"Idempotency-Key", "k1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.method+strings.Join(tt.header, ":"), func(t *testing.T) {
			var mu sync.Mutex
			var events []Event
			rt, _ := newFaultTransport(t, WithHook(func(e Event) {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}))
			srv := newRawServer(t, reset)
			resp, err := rt.RoundTrip(faultRequest(t, t.Context(), tt.method, srv.url(), "payload", tt.header...))
			if resp != nil || err == nil {
				t.Fatalf("RoundTrip = %v, %v; want an error", resp, err)
			}
			attempts, last := 0, events[len(events)-1]
			for _, e := range events {
				switch {
				case e.Kind == EventAttempt:
					attempts++
				case e.Kind == EventRetry && !tt.anyFail && e.Reason != "dial failed":
					t.Errorf("attempt %d retried after %q: only dial failures may be", e.Attempt, e.Reason)
				}
			}
			if got := int(srv.accept.Load()); got != attempts {
				t.Errorf("connections = %d, attempts = %d", got, attempts)
			}
			switch {
			case last.Kind != EventGiveUp:
				t.Errorf("last event %v, want give-up", last.Kind)
			case errors.Is(err, ErrAttemptsExhausted):
				if attempts != 3 {
					t.Errorf("attempts exhausted after %d attempts, want 3", attempts)
				}
			case tt.anyFail || !errors.Is(err, ErrNotIdempotent):
				t.Errorf("err = %v, want attempts exhausted, or for a POST not idempotent", err)
			}
			waitZero(t, "server conns", srv.open.Load)
		})
	}
}

func TestFaultResetAfterBodySent(t *testing.T) {
	// The server reads the whole request, then resets: it may have acted on
	// it. Only idempotent requests may be sent again, each with the same
	// bytes.
	const body = `{"op":"charge","amount":100}`
	tests := []struct {
		method   string
		header   []string
		wantHits int
		wantErr  error
	}{
		{http.MethodGet, nil, 3, ErrAttemptsExhausted},
		{http.MethodPut, nil, 3, ErrAttemptsExhausted},
		{http.MethodPost, nil, 1, ErrNotIdempotent},
		{http.MethodPost, []string{"Idempotency-Key", "k1"}, 3, ErrAttemptsExhausted},
		{http.MethodPatch, []string{"X-Idempotency-Key", "k2"}, 3, ErrAttemptsExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.method+strings.Join(tt.header, ":"), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			rt, _ := newFaultTransport(t)
			srv := newRawServer(t, func(c *net.TCPConn) {
				b, err := readRequest(c)
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, string(b))
				mu.Unlock()
				reset(c)
			})
			resp, err := rt.RoundTrip(faultRequest(t, t.Context(), tt.method, srv.url(), body, tt.header...))
			if resp != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("RoundTrip = %v, %v; want an error with cause %v", resp, err, tt.wantErr)
			}
			srv.ln.Close()
			srv.wg.Wait()
			if len(got) != tt.wantHits {
				t.Errorf("server hits = %d, want %d", len(got), tt.wantHits)
			}
			for i, b := range got {
				if b != body {
					t.Errorf("hit %d body = %q, want %q", i+1, b, body)
				}
			}
		})
	}
}

// connCounter tracks an http.Server's open connections through ConnState.
type connCounter struct{ open, total atomic.Int32 }

func (c *connCounter) track(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.open.Add(1)
		c.total.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

func newCountedServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.track
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
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

func TestFaultTruncatedBody(t *testing.T) {
	// A 200 that promises 100 bytes and sends 10. The answer was handed back
	// before the body was read, so the caller sees the read error; nothing
	// is retried.
	rt, _ := newFaultTransport(t)
	srv := newRawServer(t, func(c *net.TCPConn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.url(), ""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "0123456789" {
		t.Errorf("read %q, %v; want the 10 bytes and io.ErrUnexpectedEOF", b, err)
	}
	if got := srv.accept.Load(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
	waitZero(t, "server conns", srv.open.Load)
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

func TestFaultsLeaveNoConnections(t *testing.T) {
	// A mix of answers over one keep-alive transport: once its idle
	// connections are closed, the server must hold none open.
	var n atomic.Int32
	rt, _ := newFaultTransport(t)
	srv, cc := newCountedServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch n.Add(1) % 4 {
		case 0:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write(bytes.Repeat([]byte("x"), 200<<10)) // more than is drained
		case 1:
			w.WriteHeader(http.StatusBadGateway)
		case 2:
			panic(http.ErrAbortHandler)
		default:
			io.WriteString(w, "ok")
		}
	})
	for range 20 {
		resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.URL, ""))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	rt.CloseIdleConnections()
	waitZero(t, "server conns", cc.open.Load)
	t.Logf("%d requests over %d connections", n.Load(), cc.total.Load())
}
