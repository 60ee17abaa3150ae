package pacetest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// answer is the part of a response the tests compare.
type answer struct {
	Status      int
	ContentType string
	RetryAfter  string
	Body        string
}

func do(t *testing.T, rt http.RoundTripper, req *http.Request) answer {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), string(body)}
}

func get(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestScriptedOrderAndRepeat(t *testing.T) {
	tests := []struct {
		name  string
		steps []Step
		want  []answer
	}{
		{
			name: "no steps",
			want: []answer{{Status: 200}, {Status: 200}},
		},
		{
			name:  "429 then OK repeats",
			steps: []Step{TooManyRequests("2"), Status(503, "Retry-After", "1"), OK(`{"ok":true}`)},
			want: []answer{
				{429, "application/json", "2", `{"error":{"type":"rate_limit_error","message":"rate limit exceeded"}}`},
				{503, "", "1", ""},
				{200, "application/json", "", `{"ok":true}`},
				{200, "application/json", "", `{"ok":true}`},
			},
		},
		{
			name:  "explicit content type kept",
			steps: []Step{{Body: "[1]", Header: http.Header{"Content-Type": {"text/plain"}}}, OK("plain")},
			want:  []answer{{200, "text/plain", "", "[1]"}, {200, "text/plain; charset=utf-8", "", "plain"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScripted(tt.steps...)
			defer sc.Close()
			var got []answer
			for range tt.want {
				got = append(got, do(t, sc.Transport(), get(t, "http://fake.test/v1")))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScriptedRecordsRequests(t *testing.T) {
	sc := NewScripted()
	defer sc.Close()
	body := `{"model":"m","input":"hello"}`
	req, err := http.NewRequest(http.MethodPost, sc.URL()+"/v1/chat?stream=false", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k1")
	req.Header.Set("Idempotency-Key", "abc")
	resp, err := sc.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The same request, in memory, is recorded too, with no connection.
	do(t, sc.Transport(), get(t, "http://fake.test/health"))

	sum := sha256.Sum256([]byte(body))
	type rec struct {
		Method, Path, Auth, Key, Body, Sum string
		Conn                               int
	}
	var got []rec
	for _, r := range sc.Requests() {
		got = append(got, rec{r.Method, r.Path, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(r.Body), r.BodySHA256, r.Conn})
	}
	emptySum := sha256.Sum256(nil)
	want := []rec{
		{"POST", "/v1/chat?stream=false", "Bearer k1", "abc", body, hex.EncodeToString(sum[:]), 1},
		{"GET", "/health", "", "", "", hex.EncodeToString(emptySum[:]), 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Requests() (-want +got):\n%s", diff)
	}
}

func TestScriptedConns(t *testing.T) {
	sc := NewScripted(OK("hi"))
	defer sc.Close()

	// A keep-alive client reuses its connection when each body is drained
	// and closed.
	client := sc.Client()
	for range 2 {
		resp, err := client.Get(sc.URL())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := sc.Conns(); got != 1 {
		t.Errorf("after two keep-alive requests, Conns() = %d, want 1", got)
	}

	// Without keep-alives every request needs a connection of its own.
	noKeep := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 2 {
		resp, err := noKeep.Get(sc.URL())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := sc.Conns(); got != 3 {
		t.Errorf("after two more requests without keep-alive, Conns() = %d, want 3", got)
	}
	var conns []int
	for _, r := range sc.Requests() {
		conns = append(conns, r.Conn)
	}
	if diff := cmp.Diff([]int{1, 1, 2, 3}, conns); diff != "" {
		t.Errorf("Request.Conn (-want +got):\n%s", diff)
	}
}

func TestTransportStreamsIncrementally(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := NewScripted(Step{
			Delay:    500 * time.Millisecond,
			Stream:   []string{"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"},
			Interval: time.Second,
		})
		defer sc.Close()
		start := time.Now()
		resp, err := sc.Transport().RoundTrip(get(t, "http://fake.test/stream"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("headers after %v, want 500ms", got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
		type event struct {
			Line string
			At   time.Duration
		}
		var got []event
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if lines.Text() != "" {
				got = append(got, event{lines.Text(), time.Since(start)})
			}
		}
		if err := lines.Err(); err != nil {
			t.Fatal(err)
		}
		want := []event{{"data: 1", 500 * time.Millisecond}, {"data: 2", 1500 * time.Millisecond}, {"data: 3", 2500 * time.Millisecond}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestTransportHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := NewScripted(
			Step{Delay: 5 * time.Second},
			Step{Stream: []string{"a", "b"}, Interval: 5 * time.Second},
		)
		defer sc.Close()

		// Waiting for headers.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := sc.Transport().RoundTrip(get(t, "http://fake.test/").WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("slow answer: err = %v after %v, want deadline exceeded after 1s", err, time.Since(start))
		}

		// Reading the body.
		ctx, cancel = context.WithCancel(t.Context())
		resp, err := sc.Transport().RoundTrip(get(t, "http://fake.test/").WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 10)
		if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "a" {
			t.Fatalf("first read = %q, %v", buf[:n], err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: err = %v, want context.Canceled", err)
		}
	})
}

func TestTransportEarlyCloseStopsHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := NewScripted(Step{Stream: []string{"a", "b", "c"}, Interval: time.Hour})
		defer sc.Close()
		resp, err := sc.Transport().RoundTrip(get(t, "http://fake.test/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// synctest.Test fails if the handler goroutine is still waiting
		// out its interval when the bubble ends; Wait makes the point here.
		synctest.Wait()
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Error("Read after Close succeeded")
		}
	})
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed int
}

func (b *trackedBody) Close() error { b.closed++; return nil }

func TestTransportContract(t *testing.T) {
	sc := NewScripted(OK("done"))
	defer sc.Close()
	body := &trackedBody{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPut, "http://fake.test/x", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "1")
	resp, err := sc.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "done" || resp.Request != req || resp.Status != "200 OK" {
		t.Errorf("response: body %q, Request %p (want %p), Status %q", got, resp.Request, req, resp.Status)
	}
	if body.closed != 1 {
		t.Errorf("request body closed %d times, want 1", body.closed)
	}
	if req.URL.String() != "http://fake.test/x" || len(req.Header) != 1 {
		t.Errorf("request modified: %v %v", req.URL, req.Header)
	}
	if r := sc.Requests()[0]; string(r.Body) != "payload" || r.Header.Get("X-Test") != "1" {
		t.Errorf("handler saw body %q, header %v", r.Body, r.Header)
	}
}

func TestCloseConn(t *testing.T) {
	steps := []Step{
		{CloseConn: true},
		{Stream: []string{"data: 1\n\n"}, CloseConn: true},
	}
	check := func(t *testing.T, rt http.RoundTripper, url string) {
		if _, err := rt.RoundTrip(get(t, url)); err == nil {
			t.Error("dropped connection: RoundTrip succeeded")
		}
		resp, err := rt.RoundTrip(get(t, url))
		if err != nil {
			t.Fatalf("cut stream: RoundTrip: %v", err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil || string(got) != "data: 1\n\n" {
			t.Errorf("cut stream: read %q, %v; want the first event and an error", got, err)
		}
	}
	t.Run("loopback", func(t *testing.T) {
		sc := NewScripted(steps...)
		defer sc.Close()
		check(t, sc.Client().Transport, sc.URL())
	})
	t.Run("memory", func(t *testing.T) {
		sc := NewScripted(steps...)
		defer sc.Close()
		check(t, sc.Transport(), "http://fake.test/")
	})
}
