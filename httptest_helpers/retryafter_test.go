package pacetest

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetryAfterFormats(t *testing.T) {
	// The synctest epoch, 2000-01-01T00:00:00Z, plus 300ms.
	now := time.Date(2000, 1, 1, 0, 0, 0, 300e6, time.UTC)
	tests := []struct {
		format    RetryAfter
		wait      time.Duration
		header    http.Header
		announced time.Duration
	}{
		{RetryAfterSeconds, 10 * time.Millisecond, http.Header{"Retry-After": {"1"}}, time.Second},
		{RetryAfterSeconds, 2 * time.Second, http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		{RetryAfterSeconds, 2001 * time.Millisecond, http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{RetryAfterNone, 2 * time.Second, http.Header{}, 0},
		{RetryAfterMillis, 10*time.Millisecond + 1, http.Header{"Retry-After-Ms": {"11"}}, 11 * time.Millisecond},
		{RetryAfterMillis, 0, http.Header{"Retry-After-Ms": {"1"}}, time.Millisecond},
		{RetryAfterFraction, 125 * time.Millisecond, http.Header{"Retry-After": {"0.125"}}, 125 * time.Millisecond},
		{RetryAfterFraction, 2 * time.Second, http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		// 0.3s + 1.2s = 1.5s, rounded up to 00:00:02; Date is 00:00:00.
		{RetryAfterDate, 1200 * time.Millisecond, http.Header{
			"Date":        {"Sat, 01 Jan 2000 00:00:00 GMT"},
			"Retry-After": {"Sat, 01 Jan 2000 00:00:02 GMT"},
		}, 2 * time.Second},
		// Never the very second of Date: that would read as no wait.
		{RetryAfterDate, 0, http.Header{
			"Date":        {"Sat, 01 Jan 2000 00:00:00 GMT"},
			"Retry-After": {"Sat, 01 Jan 2000 00:00:01 GMT"},
		}, time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		got := tt.format.write(h, now, tt.wait)
		if diff := cmp.Diff(tt.header, h); diff != "" || got != tt.announced {
			t.Errorf("%v of %v: announced %v, want %v; header (-want +got):\n%s", tt.format, tt.wait, got, tt.announced, diff)
		}
		// Whatever the format, waiting what it announces is enough.
		if tt.announced != 0 && tt.announced < tt.wait {
			t.Errorf("%v announces %v for a wait of %v", tt.format, tt.announced, tt.wait)
		}
	}
	if s := RetryAfter(9).String(); s != "RetryAfter(9)" {
		t.Errorf("String of an unknown format = %q", s)
	}
}

func TestRetryAfterOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 4, Burst: 1, RetryAfter: RetryAfterMillis})
		defer api.Close()
		call(t, api.Transport(), "", 1)
		r := call(t, api.Transport(), "", 1)
		if r.StatusCode != 429 || r.Header.Get("Retry-After-Ms") != "250" || r.Header.Get("Retry-After") != "" {
			t.Errorf("429 headers %v, want only retry-after-ms: 250", r.Header)
		}
		a := api.Answers()
		if len(a) != 2 || a[1].RetryAfter != 250*time.Millisecond || a[1].Status != 429 || a[0].Service != 0 {
			t.Errorf("Answers: %+v", a)
		}
	})
}
