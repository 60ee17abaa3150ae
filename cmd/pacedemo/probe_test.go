package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const probeKey = "sk-probe-SECRET-0123456789"

// vendorAt returns a transport that sends every request, whatever its host,
// to srv: the probe picks the key by host, so the test calls the vendors'
// real hosts and reaches the fake.
func vendorAt(t *testing.T, srv *httptest.Server) http.RoundTripper {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestProbe(t *testing.T) {
	reset := time.Now().Add(30 * time.Second).UTC().Truncate(time.Second).Format(time.RFC3339)
	for _, tc := range []struct {
		name     string
		url      string
		env      string
		header   func(h http.Header) string // the key as the fake received it
		answer   func(h http.Header)
		status   int
		want     []string
		wantBody string
	}{
		{
			name: "openai", url: "http://api.openai.com/v1/chat/completions", env: "OPENAI_API_KEY",
			header: func(h http.Header) string { return strings.TrimPrefix(h.Get("Authorization"), "Bearer ") },
			answer: func(h http.Header) {
				h.Set("x-ratelimit-limit-requests", "500")
				h.Set("x-ratelimit-remaining-requests", "499")
				h.Set("x-ratelimit-reset-requests", "120ms")
				h.Set("x-ratelimit-limit-tokens", "200000")
				h.Set("x-ratelimit-remaining-tokens", "199979")
				h.Set("x-ratelimit-reset-tokens", "6ms")
				h.Set("x-request-id", "req_1")
			},
			status: http.StatusOK,
			want: []string{
				"POST http://api.openai.com/v1/chat/completions",
				"key:    from OPENAI_API_KEY, sent as Authorization (never printed)",
				"status: 200 OK",
				"rate-limit headers (6):",
				"  x-ratelimit-reset-requests: 120ms",
				"requests: ", "tokens:   ",
			},
		},
		{
			name: "anthropic 429", url: "http://api.anthropic.com/v1/messages", env: "ANTHROPIC_API_KEY",
			header: func(h http.Header) string { return h.Get("X-Api-Key") },
			answer: func(h http.Header) {
				for _, b := range []string{"requests", "input-tokens", "output-tokens", "tokens"} {
					h.Set("anthropic-ratelimit-"+b+"-limit", "50")
					h.Set("anthropic-ratelimit-"+b+"-remaining", "0")
					h.Set("anthropic-ratelimit-"+b+"-reset", reset)
				}
				h.Set("retry-after", "30")
				h.Set("x-should-retry", "true")
			},
			status: http.StatusTooManyRequests,
			want: []string{
				"key:    from ANTHROPIC_API_KEY, sent as X-Api-Key (never printed)",
				"status: 429 Too Many Requests",
				"rate-limit headers (14):",
				"  retry-after: 30",
				"  x-should-retry: true",
				"pause:    no request before 30s from now",
			},
			wantBody: `body:   {"type":"error"`,
		},
		{
			name: "proxy without headers", url: "http://llm-gateway.test/v1/chat/completions", env: "PACEHTTP_PROBE_KEY",
			header: func(h http.Header) string { return strings.TrimPrefix(h.Get("Authorization"), "Bearer ") },
			answer: func(http.Header) {},
			status: http.StatusOK,
			want: []string{
				"rate-limit headers (0):",
				"none: pacehttp will learn the rate from the 429s themselves",
				"nothing from this answer",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = tc.header(r.Header)
				tc.answer(w.Header())
				// A server that echoes the key back, in a header and in
				// the body, must not make the probe print it.
				w.Header().Set("X-Echo", "key="+got)
				w.WriteHeader(tc.status)
				w.Write([]byte(`{"type":"error","echo":"` + got + `"}`))
			}))
			defer srv.Close()
			var out strings.Builder
			p := &prober{
				url: tc.url, body: `{"model":"m","max_tokens":1}`,
				env: func(name string) string {
					if name == tc.env {
						return probeKey
					}
					return ""
				},
				base: vendorAt(t, srv),
			}
			if err := p.run(&out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got != probeKey {
				t.Errorf("the server received the key %q, want %q", got, probeKey)
			}
			for _, w := range append(tc.want, tc.wantBody) {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "SECRET") {
				t.Errorf("output holds the key:\n%s", out.String())
			}
		})
	}
}

func TestProbeNeedsAKey(t *testing.T) {
	p := &prober{url: "https://api.x.ai/v1/models", env: func(string) string { return "" }}
	err := p.run(&strings.Builder{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "set XAI_API_KEY") {
		t.Errorf("error = %v, want one naming XAI_API_KEY", err)
	}
}

func TestProbeFlagRuns(t *testing.T) {
	// -probe with a bad URL fails at once, before any demo runs.
	var stdout, stderr strings.Builder
	err := run([]string{"-probe", "ftp://example.test/"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "-probe wants an http or https URL") {
		t.Errorf("run -probe ftp://... = %v", err)
	}
}
