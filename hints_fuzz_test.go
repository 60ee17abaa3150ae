package pacehttp

import (
	"math"
	"net/http"
	"testing"
)

// checkHint fails t unless hint, ok and err keep retryHint's contract.
func checkHint(t *testing.T, hint Hint, ok bool, err error) {
	t.Helper()
	if hint.Wait < 0 { // maxHintWait is the largest Duration: above it is impossible
		t.Errorf("Wait = %v, want it not negative", hint.Wait)
	}
	if ok != (hint.Source != "") {
		t.Errorf("ok = %t with Source %q", ok, hint.Source)
	}
	if !ok && hint.Wait != 0 {
		t.Errorf("no hint, yet Wait = %v", hint.Wait)
	}
	errHeaders(t, err) // every error is a short *HeaderError
}

// FuzzRetryHint feeds the same hostile values to every source, alone and
// all together, so that each parser sees them first at least once.
func FuzzRetryHint(f *testing.F) {
	f.Add("1500", "Sun, 01 Jun 2025 12:00:30 GMT", "0", "6m0s")
	f.Add("12.5", "1.5", "0", "2025-06-01T12:00:10Z")
	f.Add("-1", "Sunday, 01-Jun-25 12:01:00 GMT", "0", `"default";r=0;t=30`)
	f.Add("NaN", "Sun Jun  1 12:02:00 2025", "0", "limit=100, remaining=0, reset=5")
	f.Add("", "Fri, 31 Dec 9999 23:59:59 GMT", "0", "1748779290")
	f.Add(digits500, "1e18", "-0", digits500)
	f.Add("+Inf", "0x10", "5", "99999999999999999999h")
	f.Fuzz(func(t *testing.T, ms, retryAfter, remaining, reset string) {
		resets := http.Header{
			"X-Ratelimit-Remaining-Requests":          {remaining},
			"X-Ratelimit-Reset-Requests":              {reset},
			"Anthropic-Ratelimit-Tokens-Remaining":    {remaining},
			"Anthropic-Ratelimit-Tokens-Reset":        {reset},
			"Anthropic-Ratelimit-Tokens-Limit":        {remaining},
			"Ratelimit-Policy":                        {reset},
			"Ratelimit":                               {reset},
			"Ratelimit-Remaining":                     {remaining},
			"Ratelimit-Reset":                         {reset},
			"X-Ratelimit-Remaining":                   {remaining},
			"X-Ratelimit-Reset":                       {reset},
			"X-Ratelimit-Limit-Requests":              {remaining},
			"Anthropic-Ratelimit-Output-Tokens-Reset": {retryAfter},
		}
		for _, h := range []http.Header{
			{"Retry-After-Ms": {ms}},
			{"Retry-After": {retryAfter}},
			{"Retry-After": {retryAfter, ms}},
			resets,
		} {
			hint, ok, err := retryHint(h, now)
			checkHint(t, hint, ok, err)
		}
		resets["Retry-After-Ms"] = []string{ms}
		resets["Retry-After"] = []string{retryAfter}
		hint, ok, err := retryHint(resets, now)
		checkHint(t, hint, ok, err)
	})
}

// FuzzParseQuotas checks that no header value yields a quota outside its
// documented ranges, or a nextUnit or refillRate a caller could not use.
func FuzzParseQuotas(f *testing.F) {
	f.Add("100", "0", "1s", `"default";q=100;w=60, "daily";q=1000;w=86400`, `"default";r=0;t=30`)
	f.Add("9223372036854775807", "9223372036854775808", "2562047h47m16.854775808s", `100;w=60`, "limit=100, remaining=0, reset=5")
	f.Add("-1", "NaN", "2025-06-01T12:00:10Z", `"a";q=1;pk=:cHJvamVjdA==:;qu="requests"`, `"a\"b";r=1;t=1`)
	f.Add("1e3", "", "1748779290", `"unterminated`, `"x";r=`+digits500)
	f.Fuzz(func(t *testing.T, limit, remaining, reset, policy, ratelimit string) {
		h := http.Header{}
		for _, p := range []string{"Anthropic-Ratelimit-Requests-", "Anthropic-Ratelimit-Input-Tokens-"} {
			h.Set(p+"Limit", limit)
			h.Set(p+"Remaining", remaining)
			h.Set(p+"Reset", reset)
		}
		for _, suffix := range []string{"", "-Requests", "-Tokens"} {
			h.Set("X-Ratelimit-Limit"+suffix, limit)
			h.Set("X-Ratelimit-Remaining"+suffix, remaining)
			h.Set("X-Ratelimit-Reset"+suffix, reset)
		}
		h.Set("X-Ratelimit-Used", remaining)
		h.Set("X-Ratelimit-Resource", policy)
		h.Set("Ratelimit-Limit", limit)
		h.Set("Ratelimit-Remaining", remaining)
		h.Set("Ratelimit-Reset", reset)
		h.Set("Ratelimit-Policy", policy)
		h.Set("Ratelimit", ratelimit)

		qs, err := parseQuotas(h, now)
		errHeaders(t, err)
		for _, q := range qs {
			if q.Limit < -1 || q.Remaining < -1 || q.Reset < -1 || q.Window < 0 {
				t.Errorf("quota out of range: %+v", q)
			}
			if d := q.nextUnit(); d < 0 || d > max(q.Reset, 0) {
				t.Errorf("%+v.nextUnit() = %v, want within [0, Reset]", q, d)
			}
			if r := q.refillRate(); r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				t.Errorf("%+v.refillRate() = %v, want finite and >= 0", q, r)
			}
		}
	})
}

// FuzzRetryHintFromBody checks that no body panics the Google parser or
// yields a negative wait or an error other than *HeaderError.
func FuzzRetryHintFromBody(f *testing.F) {
	f.Add([]byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`))
	f.Add([]byte(`[{"error":{"details":[{"@type":"google.rpc.RetryInfo","retryDelay":"0.000001s"}]}}]`))
	f.Add([]byte(`{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"-1s"}]}}`))
	f.Add([]byte(`{"error":"rate_limited"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		hint, ok, _, err := retryHintFromBody(body)
		checkHint(t, hint, ok, err)
	})
}
