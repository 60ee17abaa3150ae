package pacehttp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// onceBody is a caller's request body that counts its closes.
type onceBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *onceBody) Close() error { b.closes.Add(1); return nil }

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
		caller := &onceBody{Reader: bytes.NewReader(data)}
		req, err := http.NewRequest(http.MethodPost, "http://api.test/", caller)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Idempotency-Key", "k") // every failure is retryable
		var getBodies []*onceBody
		if withGetBody {
			req.GetBody = func() (io.ReadCloser, error) {
				b := &onceBody{Reader: bytes.NewReader(data)}
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
