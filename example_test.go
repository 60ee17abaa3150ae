package pacehttp_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/pacehttp/pacehttp"
)

// tooManyThenOK is a server that refuses the first n requests with a 429
// and a Retry-After of zero seconds, then answers 200.
func tooManyThenOK(n int32) *httptest.Server {
	var seen atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if seen.Add(1) <= n {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"type":"rate_limit_error"}}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
}

func ExampleNew() {
	srv := tooManyThenOK(2)
	defer srv.Close()

	client := &http.Client{Transport: pacehttp.New(http.DefaultTransport,
		pacehttp.WithMaxAttempts(5),
		pacehttp.WithMaxWait(30*time.Second),
	)}
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"ok":true}
}

func ExampleNewClient() {
	srv := tooManyThenOK(1)
	defer srv.Close()

	// Hand this client to any SDK that accepts an *http.Client.
	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(3))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

// When pacehttp gives up, the caller gets the server's last answer intact,
// marked so that an SDK's own retry loop does not start over.
func ExampleWithMaxAttempts() {
	srv := tooManyThenOK(10)
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(2))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Should-Retry"), string(body))
	// Output: 429 false {"error":{"type":"rate_limit_error"}}
}

// A wait longer than the cap is not slept: the request gives up at once.
func ExampleWithMaxWait() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithMaxWait(10*time.Second),
		pacehttp.WithHook(func(e pacehttp.Event) {
			if e.Kind == pacehttp.EventGiveUp {
				fmt.Println("gave up:", e.Reason)
			}
		}))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// gave up: status 429: wait exceeds max wait
	// 429
}

// A hook sees every attempt and every decision to wait; here it logs them
// with log/slog.
func ExampleWithHook() {
	srv := tooManyThenOK(1)
	defer srv.Close()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "wait" {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	client := pacehttp.NewClient(pacehttp.WithHook(func(e pacehttp.Event) {
		switch e.Kind {
		case pacehttp.EventAttempt, pacehttp.EventRetry, pacehttp.EventGiveUp:
			logger.Info(e.Kind.String(), "attempt", e.Attempt, "reason", e.Reason, "wait", e.Wait, "status", e.StatusCode)
		}
	}))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// Output:
	// level=INFO msg=attempt attempt=1 reason="" status=0
	// level=INFO msg=retry attempt=1 reason="status 429" status=429
	// level=INFO msg=attempt attempt=2 reason="" status=0
}

// The layers compose with any other middleware; the first listed is the
// outermost.
func ExampleChain() {
	srv := tooManyThenOK(1)
	defer srv.Close()

	var attempts atomic.Int32
	count := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			attempts.Add(1)
			return next.RoundTrip(r)
		})
	}
	client := &http.Client{Transport: pacehttp.Chain(nil, pacehttp.Retry(), count)}
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", attempts.Load(), "attempts")
	// Output: 200 after 2 attempts
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A transport error that outlasts the attempts comes back wrapped: both the
// cause and the original error are visible to errors.Is and errors.As.
func ExampleRetryError() {
	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(1))
	_, err := client.Get("ftp://example.invalid/")
	var rerr *pacehttp.RetryError
	fmt.Println(errors.As(err, &rerr), rerr.Attempts)
	// Output: true 1
}

// stableLogger logs at Warn and above to standard output without the
// attributes that change from run to run (time, host, partition), so that
// an Example's output can be checked.
func stableLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "host", "partition":
				return slog.Attr{}
			}
			return a
		},
	}))
}

// LogHook logs what pacehttp does with log/slog, without credentials. Here
// only give-ups, logged at Warn, pass the handler's level.
func ExampleLogHook() {
	srv := tooManyThenOK(1)
	defer srv.Close()

	logger := stableLogger()
	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(1), pacehttp.WithHook(pacehttp.LogHook(logger)))
	resp, err := client.Get(srv.URL + "/v1/models?key=secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// Output:
	// level=WARN msg="pacehttp give-up" attempt=1 method=GET reason="status 429: attempts exhausted" status=429
}

// LogRoute names each request's endpoint in the log without its path,
// which can hold IDs and tokens: here Telegram's bot API, whose token sits
// in the path.
func ExampleLogRoute() {
	srv := tooManyThenOK(1)
	defer srv.Close()

	route := func(r *http.Request) string {
		// /bot<token>/<method>: keep the method, never the token.
		if i := strings.LastIndexByte(r.URL.Path, '/'); strings.HasPrefix(r.URL.Path, "/bot") && i > 0 {
			return "/bot{token}" + r.URL.Path[i:]
		}
		return "other"
	}
	logger := stableLogger()
	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(1),
		pacehttp.WithHook(pacehttp.LogHook(logger, pacehttp.LogRoute(route))))
	resp, err := client.Get(srv.URL + "/bot123456:SECRET/getUpdates")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// Output:
	// level=WARN msg="pacehttp give-up" attempt=1 method=GET route=/bot{token}/getUpdates reason="status 429: attempts exhausted" status=429
}

func ExampleFromRetryablehttp() {
	srv := tooManyThenOK(2)
	defer srv.Close()

	// Before:
	//
	//	rc := retryablehttp.NewClient()
	//	rc.RetryMax = 4
	//	rc.CheckRetry = retryablehttp.ErrorPropagatedRetryPolicy
	//	rc.Backoff = retryablehttp.LinearJitterBackoff
	//	rc.RetryWaitMin, rc.RetryWaitMax = 800*time.Millisecond, 1200*time.Millisecond
	//	client := rc.StandardClient()
	client := pacehttp.NewClient(
		pacehttp.FromRetryablehttp(retryablehttp.ErrorPropagatedRetryPolicy, retryablehttp.LinearJitterBackoff),
		pacehttp.WithBackoff(800*time.Millisecond, 1200*time.Millisecond),
		pacehttp.WithMaxAttempts(4+1),        // RetryMax counts retries, WithMaxAttempts attempts
		pacehttp.WithMaxWait(30*time.Second), // retryablehttp honoured any Retry-After, however long
		pacehttp.WithHook(func(e pacehttp.Event) {
			if e.Kind == pacehttp.EventRetry {
				fmt.Println("retry:", e.Reason, e.StatusCode)
			}
		}),
	)
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// retry: check retry 429
	// retry: check retry 429
	// 200
}
