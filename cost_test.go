package pacehttp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestMaxTokens(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{`{"max_tokens":1024}`, 1024},
		{`{"a":1, "max_tokens" : 7,"b":2}`, 7},
		{`{"max_tokens":"x"}`, 0},
		{`{"model":"m"}`, 0},
		{`{"max_tokens":99999999999999}`, 1 << 30},
	}
	for _, tc := range tests {
		if got := maxTokens([]byte(tc.body)); got != tc.want {
			t.Errorf("maxTokens(%s) = %d, want %d", tc.body, got, tc.want)
		}
	}
	body := `{"max_tokens":100,"prompt":"` + strings.Repeat("a", 400) + `"}`
	req, _ := http.NewRequest("POST", "http://x/", strings.NewReader(body))
	if got, want := costOf(req, true), len(body)/4+100; got != want {
		t.Errorf("defaultCost = %d, want %d: a quarter token per byte plus max_tokens", got, want)
	}
	if got, want := costOf(req, false), len(body)/4; got != want {
		t.Errorf("defaultCost, input only = %d, want %d: a quarter token per byte", got, want)
	}
}

// Anthropic's input-token limit counts the prompt only: once a partition
// paces by it, a request's max_tokens is no longer part of its cost.
func TestCostFollowsTheTokenLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.Header{}
		h.Set("Anthropic-Ratelimit-Input-Tokens-Limit", "100000")
		h.Set("Anthropic-Ratelimit-Input-Tokens-Remaining", "99000")
		h.Set("Anthropic-Ratelimit-Input-Tokens-Reset", time.Now().Add(time.Second).UTC().Format(time.RFC3339))
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: h.Clone(), Body: http.NoBody, Request: req}, nil
		})
		var costs []int
		p := Pace(WithCostFunc(nil))(base).(*pacer)
		body := `{"max_tokens":4000,"messages":[{"role":"user","content":"` + strings.Repeat("a", 396) + `"}]}`
		for range 2 {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://api.anthropic.com/v1/messages", strings.NewReader(body))
			resp, err := p.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			part := onlyPacerPartition(t, p)
			costs = append(costs, costOf(req, !part.inputOnly.Load()))
		}
		if want := len(body) / 4; costs[1] != want {
			t.Errorf("cost under an input-token limit = %d, want %d: the prompt only", costs[1], want)
		}
	})
}

// onlyPacerPartition returns p's one partition.
func onlyPacerPartition(t *testing.T, p *pacer) *partition {
	t.Helper()
	p.parts.mu.Lock()
	defer p.parts.mu.Unlock()
	if len(p.parts.m) != 1 {
		t.Fatalf("%d partitions, want 1", len(p.parts.m))
	}
	for _, part := range p.parts.m {
		return part
	}
	return nil
}

// costOf is defaultCost of req with a body peek of its own.
func costOf(req *http.Request, withOutput bool) int {
	body := bodyPeek{req: req}
	defer body.release()
	return defaultCost(req, &body, withOutput)
}
