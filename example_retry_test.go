package pacehttp_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pacehttp/pacehttp"
)

// statusThenOK answers the first n requests with code, then 200, and
// counts the requests it saw.
func statusThenOK(code int, n int32, seen *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if seen.Add(1) <= n {
			w.WriteHeader(code)
			return
		}
		io.WriteString(w, "ok")
	}))
}

// Retry alone, without the pacer, composed over any transport.
func ExampleRetry() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusServiceUnavailable, 1, &seen)
	defer srv.Close()

	client := &http.Client{Transport: pacehttp.Chain(nil,
		pacehttp.Retry(pacehttp.WithBackoff(time.Millisecond, 10*time.Millisecond)))}
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "requests")
	// Output: 200 after 2 requests
}

// Without a server hint, waits follow full-jitter exponential backoff
// between the bounds given here.
func ExampleWithBackoff() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusBadGateway, 2, &seen)
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithBackoff(time.Millisecond, 20*time.Millisecond))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "requests")
	// Output: 200 after 3 requests
}

// A backoff of your own, here a constant wait.
func ExampleWithBackoffFunc() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusInternalServerError, 1, &seen)
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithBackoffFunc(func(int) time.Duration { return 5 * time.Millisecond }))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

// A POST that met a 500 may have been processed, so it is not repeated
// unless the caller says repeating is harmless.
func ExampleWithRetryAllMethods() {
	for _, opts := range [][]pacehttp.Option{nil, {pacehttp.WithRetryAllMethods()}} {
		var seen atomic.Int32
		srv := statusThenOK(http.StatusInternalServerError, 1, &seen)
		opts = append(opts, pacehttp.WithBackoff(time.Millisecond, time.Millisecond))
		resp, err := pacehttp.NewClient(opts...).Post(srv.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, "after", seen.Load(), "request(s)")
		srv.Close()
	}
	// Output:
	// 500 after 1 request(s)
	// 200 after 2 request(s)
}

// A body without GetBody is buffered to be replayed, up to the limit; a
// larger one is sent once and not retried.
func ExampleWithMaxBufferedBody() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusServiceUnavailable, 1, &seen)
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithMaxBufferedBody(4),
		pacehttp.WithHook(func(e pacehttp.Event) {
			if e.Kind == pacehttp.EventGiveUp {
				fmt.Println("gave up:", e.Reason)
			}
		}))
	body := io.MultiReader(strings.NewReader(`{"too":"long"}`)) // no GetBody
	resp, err := client.Post(srv.URL, "application/json", body)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// gave up: status 503: request body not replayable
	// 503
}

// A classifier of your own, wrapping the default: here a 409 Conflict is
// also worth another try.
func ExampleWithClassifier() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusConflict, 1, &seen)
	defer srv.Close()

	classify := func(req *http.Request, resp *http.Response, err error) pacehttp.Decision {
		if resp != nil && resp.StatusCode == http.StatusConflict {
			return pacehttp.Decision{Retry: true, Reason: "status 409"}
		}
		return pacehttp.DefaultClassifier(req, resp, err)
	}
	client := pacehttp.NewClient(pacehttp.WithClassifier(classify),
		pacehttp.WithBackoff(time.Millisecond, time.Millisecond))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "requests")
	// Output: 200 after 2 requests
}

// DefaultClassifier can be asked directly what pacehttp would do.
func ExampleDefaultClassifier() {
	req, _ := http.NewRequest("POST", "https://api.example/v1/messages", nil)
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}}}
	d := pacehttp.DefaultClassifier(req, resp, nil)
	fmt.Println(d.Retry, d.Unprocessed, d.Reason, d.Hint.Wait, d.Hint.Source)
	// Output: true true status 429 7s retry-after
}

// With no retry budget left, an unhinted failure is handed back at once.
func ExampleWithRetryBudget() {
	var seen atomic.Int32
	srv := statusThenOK(http.StatusBadGateway, 100, &seen)
	defer srv.Close()

	// No share of requests and no floor: no unhinted retry at all.
	client := pacehttp.NewClient(pacehttp.WithRetryBudget(0, 0))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "request(s)")
	// Output: 502 after 1 request(s)
}

// An attempt that gets no response headers in time is abandoned and tried
// again; a body that streams for longer is not cut.
func ExampleWithAttemptTimeout() {
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) == 1 {
			select {
			case <-r.Context().Done(): // the client gave up on this attempt
			case <-time.After(5 * time.Second):
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithAttemptTimeout(50*time.Millisecond),
		pacehttp.WithBackoff(time.Millisecond, time.Millisecond))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "attempts")
	// Output: 200 after 2 attempts
}

// A hint the server sent malformed is not followed, and a hook is told: the
// retry and give-up events carry it as IgnoredHints, a *HeaderError each.
func ExampleHeaderError() {
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) == 1 {
			w.Header().Set("Retry-After", "soon")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithBackoff(time.Millisecond, time.Millisecond),
		pacehttp.WithHook(func(e pacehttp.Event) {
			var herr *pacehttp.HeaderError
			if errors.As(e.IgnoredHints, &herr) {
				fmt.Printf("%v: ignored %s %q\n", e.Kind, herr.Header, herr.Value)
			}
		}))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", seen.Load(), "attempts")
	// Output:
	// retry: ignored retry-after "soon"
	// 200 after 2 attempts
}
