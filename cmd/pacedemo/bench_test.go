package main

import (
	"net/http"
	"testing"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/pacehttp/pacehttp"
)

// canned is a base transport that answers every request 200 without
// touching the network. It allocates one response per call, as any real
// transport must, so that the bare benchmark is the baseline the wrappers
// add to.
type canned struct{}

func (canned) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          http.NoBody,
		ContentLength: 0,
		Request:       req,
	}, nil
}

// benchRoundTrip measures one request through rt, body closed, as a caller
// would: the per-request overhead of a wrapper is its result minus Bare's.
//
// Besides wall time it reports cpu-ns/op, the process's CPU time (user and
// system, GC included) per request, which other processes on a shared
// machine disturb far less than wall time.
func benchRoundTrip(b *testing.B, rt http.RoundTripper) {
	req, err := http.NewRequest(http.MethodGet, "http://api.example/v1/items", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

func BenchmarkRoundTrip(b *testing.B) {
	b.Run("bare", func(b *testing.B) { benchRoundTrip(b, canned{}) })
	b.Run("pacehttp", func(b *testing.B) {
		// Defaults: limit unknown, nothing learned from a header-less 200,
		// so the limiter never binds.
		benchRoundTrip(b, pacehttp.New(canned{}))
	})
	b.Run("pacehttp-rate", func(b *testing.B) {
		// A stated limit far above what the loop reaches: the token bucket
		// is consulted on every request but never waits.
		benchRoundTrip(b, pacehttp.New(canned{}, pacehttp.WithRate(1e12, 1<<30)))
	})
	b.Run("retryablehttp", func(b *testing.B) {
		rc := retryablehttp.NewClient()
		rc.HTTPClient.Transport = canned{}
		rc.Logger = nil // the default logger writes a line per request
		benchRoundTrip(b, &retryablehttp.RoundTripper{Client: rc})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		policy := failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(5).Build()
		benchRoundTrip(b, failsafehttp.NewRoundTripper(canned{}, policy))
	})
}
