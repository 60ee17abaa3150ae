package integration_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"google.golang.org/genai"
)

// Google sends its wait in the 429's body, as a google.rpc.RetryInfo, not
// in a header.
const (
	googleRetryIn1s = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1s"}]}}`

	googleDailyQuota = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"250"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`
)

// TestGenaiWaitsForRetryInfo runs in a synctest bubble over the fake's
// in-memory transport, so the one-second wait Google asks for passes on the
// bubble's clock and the test takes no real second.
func TestGenaiWaitsForRetryInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := pacetest.NewScripted(
			pacetest.Step{Status: http.StatusTooManyRequests, Body: googleRetryIn1s},
			pacetest.OK(googleResponse),
		)
		defer sc.Close()
		var waits []time.Duration
		rt := pacehttp.New(sc.Transport(), pacehttp.WithMaxAttempts(3), pacehttp.WithHook(func(e pacehttp.Event) {
			if e.Kind == pacehttp.EventRetry {
				waits = append(waits, e.Wait)
			}
		}))
		client, err := genaiClient(t.Context(), &http.Client{Transport: rt}, "http://generativelanguage.test")
		if err != nil {
			t.Fatal(err)
		}

		resp, err := client.Models.GenerateContent(t.Context(), "gemini-2.5-flash", genai.Text("Say hello."), nil)
		if err != nil {
			t.Fatalf("GenerateContent: %v", err)
		}
		if got := resp.Text(); got != "Hello!" {
			t.Errorf("text = %q, want %q", got, "Hello!")
		}
		reqs := sc.Requests()
		if len(reqs) != 2 {
			t.Fatalf("server saw %d round trips, want 2", len(reqs))
		}
		if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second || gap > 1100*time.Millisecond {
			t.Errorf("retry came %v after the 429; want the 1s RetryInfo asked for, plus at most 10%% jitter", gap)
		}
		if reqs[0].BodySHA256 != reqs[1].BodySHA256 {
			t.Error("the retry sent a different body")
		}
		if len(waits) != 1 || waits[0] < time.Second {
			t.Errorf("retry waits = %v, want one of at least 1s", waits)
		}
	})
}

// TestGenaiDailyQuotaStopsAtOnce: a QuotaFailure on a per-day quota will not
// heal in 37 seconds, whatever RetryInfo says, so pacehttp hands the 429
// back at once, and genai's error still carries Google's whole answer.
func TestGenaiDailyQuotaStopsAtOnce(t *testing.T) {
	f := newFake(t, reply(http.StatusTooManyRequests, googleDailyQuota))
	client, err := genaiClient(t.Context(), pacedClient(t), f.URL())
	if err != nil {
		t.Fatal(err)
	}

	_, err = client.Models.GenerateContent(t.Context(), "gemini-2.5-flash", genai.Text("Say hello."), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v (%T), want genai.APIError", err, err)
	}
	if n := f.roundTrips(); n != 1 {
		t.Errorf("server saw %d round trips, want 1", n)
	}
	if apiErr.Code != http.StatusTooManyRequests || apiErr.Status != "RESOURCE_EXHAUSTED" {
		t.Errorf("code, status = %d, %q; want 429, RESOURCE_EXHAUSTED", apiErr.Code, apiErr.Status)
	}
	if !strings.HasPrefix(apiErr.Message, "You exceeded your current quota") {
		t.Errorf("message = %q, want Google's message in full", apiErr.Message)
	}
	if len(apiErr.Details) != 2 || !strings.Contains(err.Error(), "GenerateRequestsPerDayPerProjectPerModel-FreeTier") {
		t.Errorf("details = %v, want the QuotaFailure and the RetryInfo", apiErr.Details)
	}
}
