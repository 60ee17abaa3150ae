package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// secretURL holds a credential in its path, as Telegram's bot API puts one,
// in its query and in its user info.
const secretURL = "http://user:SECRET-PASSWORD@api.test/bot123456:SECRET-PATH/sendMessage?key=SECRET-QUERY"

func debugLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestLogHookFieldsAndLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := &script{answers: []answer{status(429, "Retry-After", "1")}}
		rt := Chain(s, Retry(WithMaxAttempts(2), WithHook(LogHook(debugLogger(&buf)))))
		req, err := http.NewRequest(http.MethodGet, secretURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer SECRET-TOKEN")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		out := buf.String()
		for _, want := range []string{
			`level=DEBUG msg="pacehttp attempt" attempt=1 method=GET host=api.test` + "\n",
			`level=INFO msg="pacehttp retry" attempt=1 method=GET host=api.test reason="status 429" wait=1.`,
			`level=WARN msg="pacehttp give-up" attempt=2 method=GET host=api.test reason="status 429: attempts exhausted"`,
			`status=429`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "SECRET") || strings.Contains(out, "bot123456") {
			t.Errorf("log holds the URL's path or a credential:\n%s", out)
		}
	})
}

// TestLogHookRoute: with LogRoute, each record names the route the
// caller's function gives, and still nothing of the path itself.
func TestLogHookRoute(t *testing.T) {
	var buf bytes.Buffer
	route := func(r *http.Request) string {
		if strings.HasSuffix(r.URL.Path, "/sendMessage") {
			return "/bot{token}/sendMessage"
		}
		return "other"
	}
	s := &script{answers: []answer{status(200)}}
	rt := Chain(s, Retry(WithHook(LogHook(debugLogger(&buf), LogRoute(route)))))
	req, err := http.NewRequest(http.MethodPost, secretURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	out := buf.String()
	if want := `msg="pacehttp attempt" attempt=1 method=POST host=api.test route=/bot{token}/sendMessage`; !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("log holds a credential:\n%s", out)
	}
}

// TestLogHookRedactsURLInError: a transport error that quotes the request's
// URL, as *url.Error does, is logged with the URL cut to scheme, host and
// route.
func TestLogHookRedactsURLInError(t *testing.T) {
	var buf bytes.Buffer
	fail := failingTransport{}
	rt := Chain(fail, Retry(WithMaxAttempts(1), WithHook(LogHook(debugLogger(&buf), LogRoute(func(*http.Request) string { return "/bot{token}/sendMessage" })))))
	req, err := http.NewRequest(http.MethodPost, secretURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RoundTrip(req); err == nil {
		t.Fatal("no error")
	}
	out := buf.String()
	if want := `error="Post \"http://api.test/bot{token}/sendMessage\": connection reset"`; !strings.Contains(out, want) {
		t.Errorf("log lacks the redacted error:\n%s", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("log holds a credential:\n%s", out)
	}
}

// failingTransport fails every request with an error that quotes its URL
// in full, as a transport wrapping an http.Client does.
type failingTransport struct{}

func (failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, &url.Error{Op: "Post", URL: req.URL.String(), Err: errors.New("connection reset")}
}

// TestLogHookIgnoredHints: a malformed hint the server sent is logged, so
// that a misbehaving server can be seen, and the retry still happens.
func TestLogHookIgnoredHints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := &script{answers: []answer{status(429, "Retry-After", "soon"), status(200)}}
		rt := Chain(s, Retry(WithBackoff(time.Millisecond, time.Millisecond), WithHook(LogHook(debugLogger(&buf)))))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), http.MethodGet, nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if want := `ignored_hints="pacehttp: ignored retry-after: \"soon\"`; !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	})
}

func TestLogHookDisabledLevelCostsNothing(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	route := func(*http.Request) string { t.Error("route called for a disabled level"); return "" }
	hook := LogHook(logger, LogRoute(route))
	e := Event{Kind: EventAttempt, Attempt: 1, Wait: time.Second, Request: &http.Request{URL: &url.URL{Path: "/x"}}}
	e.Request = e.Request.WithContext(context.Background())
	if n := testing.AllocsPerRun(100, func() { hook(e) }); n != 0 {
		t.Errorf("%v allocations per disabled event, want 0", n)
	}
}
