package pacehttp

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestLogHookFieldsAndLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s := &script{answers: []answer{status(429, "Retry-After", "1")}}
		rt := Chain(s, Retry(WithMaxAttempts(2), WithHook(LogHook(logger))))
		req := newRequest(t, context.Background(), "GET", nil)
		req.URL.RawQuery = "key=SECRET-QUERY-KEY"
		req.Header.Set("Authorization", "Bearer SECRET-TOKEN")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		out := buf.String()
		for _, want := range []string{
			`level=DEBUG msg="pacehttp attempt" attempt=1 method=GET host=api.test path=/v1/things`,
			`level=INFO msg="pacehttp retry" attempt=1 method=GET host=api.test path=/v1/things reason="status 429" wait=1.`,
			`level=WARN msg="pacehttp give-up" attempt=2`,
			`reason="status 429: attempts exhausted"`,
			`status=429`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "SECRET") {
			t.Errorf("log leaks a credential:\n%s", out)
		}
	})
}

func TestLogHookDisabledLevelCostsNothing(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	hook := LogHook(logger)
	e := Event{Kind: EventAttempt, Attempt: 1, Wait: time.Second}
	if n := testing.AllocsPerRun(100, func() { hook(e) }); n != 0 {
		t.Errorf("%v allocations per disabled event, want 0", n)
	}
}
