package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pacehttp/pacehttp"
	"google.golang.org/genai"
)

// TestGeminiWaitsForRetryInfo: Gemini's wait is in the 429's body, not in
// a header; pacehttp waits that long, plus at most a tenth of jitter, and
// no less.
func TestGeminiWaitsForRetryInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newGeminiAPI(1)
		hc := &http.Client{Transport: pacehttp.New(servePipes(t, api))}
		text, err := genaiSDK.call(t.Context(), hc, baseURL, "gemini-2.5-flash", sdkDefault)
		if err != nil || text != "Hello!" {
			t.Fatalf("call = %q, %v; want Hello!", text, err)
		}
		at := api.arrivals()
		if len(at) != 2 {
			t.Fatalf("server saw %d attempts, want 2", len(at))
		}
		if gap := at[1].Sub(at[0]); gap < 17*time.Second || gap > 17*time.Second*11/10 {
			t.Errorf("retry came %v after the 429; want the 17s RetryInfo asked for, plus at most 10%% jitter", gap)
		}
	})
}

// TestGeminiDailyQuotaStopsAtOnce: a QuotaFailure on a per-day quota will
// not heal in 37 seconds, whatever RetryInfo says, so pacehttp hands the
// 429 back at once, and genai's error still carries Google's whole answer.
func TestGeminiDailyQuotaStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newGeminiQuotaAPI(forever, "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "37s")
		hc := &http.Client{Transport: pacehttp.New(servePipes(t, api))}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()

		_, err := genaiSDK.call(ctx, hc, baseURL, "gemini-2.5-flash", sdkDefault)
		apiErr, ok := errors.AsType[genai.APIError](err)
		if !ok {
			t.Fatalf("error = %v (%T), want genai.APIError", err, err)
		}
		if n := api.attempts(); n != 1 {
			t.Errorf("server saw %d attempts, want 1", n)
		}
		if apiErr.Code != http.StatusTooManyRequests || apiErr.Status != "RESOURCE_EXHAUSTED" {
			t.Errorf("code, status = %d, %q; want 429, RESOURCE_EXHAUSTED", apiErr.Code, apiErr.Status)
		}
		if !strings.HasPrefix(apiErr.Message, "You exceeded your current quota") {
			t.Errorf("message = %q, want Google's message in full", apiErr.Message)
		}
		if len(apiErr.Details) != 3 || !strings.Contains(err.Error(), "GenerateRequestsPerDayPerProjectPerModel-FreeTier") {
			t.Errorf("details = %v, want the QuotaFailure, the Help and the RetryInfo", apiErr.Details)
		}
	})
}

// Gemini limits each model of a project on requests and tokens per minute
// and per day, sends no rate-limit header, and says everything in the
// 429's body: a google.rpc.QuotaFailure naming the quota spent (the model
// is a dimension of it, as it is the URL path's), a Help link, and a
// google.rpc.RetryInfo with the wait. The body is indented, as Google's
// front end sends it.
func newGeminiAPI(refusals int) *fakeAPI {
	return newGeminiQuotaAPI(refusals, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "17s")
}

// newGeminiQuotaAPI is Gemini refusing the first refusals calls on the
// quota quotaID, with a RetryInfo of retryDelay.
func newGeminiQuotaAPI(refusals int, quotaID, retryDelay string) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("Vary", "Origin, X-Origin, Referer")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": %q,
            "quotaDimensions": {
              "location": "global",
              "model": %q
            },
            "quotaValue": "10"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [
          {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": %q
      }
    ]
  }
}
`, quotaID, c.Model, retryDelay)
	}
	f.answer = func(w http.ResponseWriter, c apiCall) {
		candidate := func(text, finish string) string {
			return fmt.Sprintf(`{"candidates": [{"content": {"parts": [{"text": %q}],"role": "model"}%s,"index": 0}],"modelVersion": %q,"responseId": "mN5xaPWvOqGpz7IPk6WSmAg"}`, text, finish, c.Model)
		}
		// streamGenerateContent?alt=sse streams; generateContent does not.
		if !strings.HasSuffix(c.Path, ":streamGenerateContent") {
			writeJSON(w, http.StatusOK, candidate("Hello!", `,"finishReason": "STOP"`))
			return
		}
		sseHeader(w)
		writeEvents(w,
			"data: "+candidate("Hel", "")+"\r\n\r\n",
			"data: "+candidate("lo!", `,"finishReason": "STOP"`)+"\r\n\r\n",
		)
	}
	return f
}
