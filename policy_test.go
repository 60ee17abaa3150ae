package pacehttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

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

// FuzzClassifier gives DefaultClassifier random statuses, headers and error
// bodies. It must not panic, its Decision must be self-consistent, its hint
// never negative, its verdict the same on a second look, and the body it
// may have peeked at must still read in full.
func FuzzClassifier(f *testing.F) {
	f.Add(429, "Retry-After: 5\nContent-Type: application/json", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}`, "GET")
	f.Add(403, "X-Ratelimit-Remaining: 0\nX-Ratelimit-Reset: 99999999999", "", "POST")
	f.Add(503, "RateLimit: \"d\";r=0;t=5\nRetry-After: NaN", "", "PUT")
	f.Add(200, "X-Should-Retry: true\nretry-after-ms: -1", "", "POST")
	f.Add(429, "Content-Type: json", `[{"error":{"details":[{"@type":"google.rpc.QuotaFailure","violations":[{"quotaId":"PerDay"}]}]}}]`, "PATCH")
	f.Add(-1, "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT", "x", "")
	f.Fuzz(func(t *testing.T, status int, header, body, method string) {
		h := http.Header{}
		for _, line := range strings.Split(header, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				h.Add(k, strings.TrimSpace(v))
			}
		}
		req, err := http.NewRequest(http.MethodGet, "http://api.test/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Method = method
		newResp := func() *http.Response {
			return &http.Response{StatusCode: status, Header: h.Clone(), Body: io.NopCloser(strings.NewReader(body)), Request: req}
		}
		resp := newResp()
		d := DefaultClassifier(req, resp, nil)
		switch {
		case d.Hint.Wait < 0:
			t.Errorf("negative hint %v", d.Hint.Wait)
		case d.Unprocessed && !d.Retry:
			t.Errorf("unprocessed but not retried: %+v", d)
		case d.Retry && d.Reason == "":
			t.Errorf("retry without a reason: %+v", d)
		case d.Hint.Wait != 0 && d.Hint.Source == "":
			t.Errorf("a wait with no source: %+v", d)
		case d.Retry && status < 400:
			t.Errorf("a %d retried: %+v", status, d)
		}
		if got, err := io.ReadAll(resp.Body); err != nil || string(got) != body {
			t.Errorf("body after classifying: %q, %v; want %q", got, err, body)
		}
		if n := len(errHeaders(t, d.Hint.Ignored)); n > 2*maxHeaderErrors {
			t.Errorf("%d ignored hints reported, want at most %d (headers, then body)", n, 2*maxHeaderErrors)
		}
		// A second look at the same answer gives the same verdict. Waits
		// from HTTP-dates depend on the clock, so only their source is
		// compared.
		d2 := DefaultClassifier(req, newResp(), nil)
		if d.Retry != d2.Retry || d.Unprocessed != d2.Unprocessed || d.Reason != d2.Reason || d.Hint.Source != d2.Hint.Source {
			t.Errorf("verdicts differ: %+v then %+v", d, d2)
		}

		// Transport errors built from the same bytes: any text, any errno.
		errD := DefaultClassifier(req, nil, &net.OpError{Op: method, Net: "tcp", Err: errors.New(body)})
		if errD.Hint.Source != "" || errD.Unprocessed && !errD.Retry {
			t.Errorf("transport error verdict %+v", errD)
		}
		errD = DefaultClassifier(req, nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.Errno(status & 0xff)})
		if errD.Hint.Source != "" || errD.Unprocessed && !errD.Retry {
			t.Errorf("errno %d verdict %+v", status&0xff, errD)
		}
	})
}

// TestIgnoredHintsReachHooks: malformed hints are not followed, and say so:
// DefaultClassifier reports them in Hint.Ignored, one *HeaderError each,
// and the retry and give-up events carry them as IgnoredHints.
func TestIgnoredHintsReachHooks(t *testing.T) {
	badBody := `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"soon"}]}}`
	resp := &http.Response{StatusCode: 429, Body: io.NopCloser(strings.NewReader(badBody)),
		Header: http.Header{"Retry-After": {"in a while"}, "Content-Type": {"application/json"}}}
	req := newRequest(t, context.Background(), "GET", nil)
	d := DefaultClassifier(req, resp, nil)
	if diff := cmp.Diff([]string{"retry-after", "google.rpc.RetryInfo"}, errHeaders(t, d.Hint.Ignored)); diff != "" {
		t.Errorf("Hint.Ignored headers (-want +got):\n%s", diff)
	}

	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(503, "Retry-After", "-5")}}
		var events []Event
		rt := Chain(s, Retry(WithMaxAttempts(2), WithHook(func(e Event) { events = append(events, e) })))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		var kinds []EventKind
		for _, e := range events {
			if e.IgnoredHints != nil {
				kinds = append(kinds, e.Kind)
				herr, ok := errors.AsType[*HeaderError](e.IgnoredHints)
				if !ok || herr.Header != "retry-after" || herr.Value != "-5" {
					t.Errorf("%v: IgnoredHints = %v, want the retry-after HeaderError", e.Kind, e.IgnoredHints)
				}
			}
		}
		if diff := cmp.Diff([]EventKind{EventRetry, EventGiveUp}, kinds); diff != "" {
			t.Errorf("events with IgnoredHints (-want +got):\n%s", diff)
		}
	})
}
