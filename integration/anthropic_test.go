package integration_test

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Anthropic limits each model class on three buckets at once, refilled
// continuously over a minute: requests (RPM), input tokens (ITPM) and
// output tokens (OTPM). Every answer reports all three, and a fourth,
// "tokens", that repeats the most restrictive token limit in effect. Resets
// are RFC 3339 times, cut to the second, at which the bucket is full again.
// A 429 and a 529 also carry retry-after in whole seconds and
// x-should-retry: true; every answer carries a request-id, which the error
// body repeats.
type anthropicLimits struct {
	requests, inputTokens, outputTokens int // per minute
}

var anthropicModels = map[string]anthropicLimits{
	"claude-sonnet-4-5": {requests: 50, inputTokens: 30_000, outputTokens: 8_000},
	"claude-haiku-4-5":  {requests: 50, inputTokens: 50_000, outputTokens: 10_000},
}

// anthropicUsage is what is left in each bucket when the fake answers.
type anthropicUsage struct {
	requests, inputTokens, outputTokens int
}

// anthropicRateHeaders sets the anthropic-ratelimit-* headers for what is
// left of lim at now.
func anthropicRateHeaders(h http.Header, now time.Time, lim anthropicLimits, left anthropicUsage) {
	set := func(name string, limit, remaining int) {
		h.Set("anthropic-ratelimit-"+name+"-limit", strconv.Itoa(limit))
		h.Set("anthropic-ratelimit-"+name+"-remaining", strconv.Itoa(remaining))
		full := now.Add(perMinute(limit, remaining)).UTC().Truncate(time.Second)
		h.Set("anthropic-ratelimit-"+name+"-reset", full.Format(time.RFC3339))
	}
	set("requests", lim.requests, left.requests)
	set("input-tokens", lim.inputTokens, left.inputTokens)
	set("output-tokens", lim.outputTokens, left.outputTokens)
	// "tokens" is the most restrictive of the two token limits: the one
	// nearer to running out.
	if float64(left.outputTokens)/float64(lim.outputTokens) < float64(left.inputTokens)/float64(lim.inputTokens) {
		set("tokens", lim.outputTokens, left.outputTokens)
	} else {
		set("tokens", lim.inputTokens, left.inputTokens)
	}
}

// newAnthropicAPI is Anthropic's Messages API refusing the first refusals
// calls with status: 429, the output-token limit spent by other calls of
// the organisation, or 529, the API overloaded for everyone.
func newAnthropicAPI(refusals, status int) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		lim := anthropicModels[c.Model]
		n := f.attempts()
		id := requestID("req_011CR", n)
		h := w.Header()
		h.Set("request-id", id)
		h.Set("x-should-retry", "true")
		h.Set("anthropic-organization-id", "5c54bd3c-1b8e-4f07-9b2d-2c3c0a3e0f4e")
		if status == http.StatusTooManyRequests {
			// The output tokens come back at OTPM/60 a second; this call
			// reserves max_tokens of them.
			wait := math.Ceil(float64(c.MaxTokens) / (float64(lim.outputTokens) / 60))
			h.Set("retry-after", strconv.Itoa(int(wait)))
			anthropicRateHeaders(h, time.Now(), lim, anthropicUsage{
				requests: lim.requests - 12, inputTokens: lim.inputTokens - 9_000, outputTokens: 0,
			})
			writeJSON(w, status, fmt.Sprintf(`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (5c54bd3c-1b8e-4f07-9b2d-2c3c0a3e0f4e) of %d output tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."},"request_id":"%s"}`, lim.outputTokens, id))
			return
		}
		h.Set("retry-after", "2")
		anthropicRateHeaders(h, time.Now(), lim, anthropicUsage{
			requests: lim.requests - 3, inputTokens: lim.inputTokens - 1_200, outputTokens: lim.outputTokens - 900,
		})
		writeJSON(w, status, fmt.Sprintf(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"%s"}`, id))
	}
	f.answer = func(w http.ResponseWriter, c apiCall) {
		lim := anthropicModels[c.Model]
		h := w.Header()
		h.Set("request-id", requestID("req_011CR", f.attempts()))
		anthropicRateHeaders(h, time.Now(), lim, anthropicUsage{
			requests: lim.requests - 1, inputTokens: lim.inputTokens - 9, outputTokens: lim.outputTokens - c.MaxTokens,
		})
		if !c.Stream {
			writeJSON(w, http.StatusOK, fmt.Sprintf(`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":3}}`, c.Model))
			return
		}
		sseHeader(w)
		writeEvents(w,
			fmt.Sprintf("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"model\":%q,\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n", c.Model),
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"+
				"event: ping\ndata: {\"type\": \"ping\"}\n\n"+
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo!\"}}\n\n",
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n"+
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		)
	}
	return f
}
