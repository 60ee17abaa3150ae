package pacehttp

import (
	"flag"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

var (
	batchN    = flag.Int("pace.n", 1000, "requests per batch in BenchmarkPaceBatch")
	batchRate = flag.Float64("pace.rate", 200, "server rate in BenchmarkPaceBatch")
)

// BenchmarkPaceBatch sends a batch of requests from 32 workers through the
// pacer to a fake API limited to pace.rate requests per second with a burst
// of 20, and reports how close the batch comes to the physical bound
// (N - burst)/rate (ratio) and how many 429s it met per request (429/req).
// A 429 is resubmitted at once by the worker: the pacer's gate, not the
// worker, decides when it goes again.
func BenchmarkPaceBatch(b *testing.B) {
	const burst, workers = 20, 32
	cases := []struct {
		name string
		cfg  pacetest.Config
		opts []Option
	}{
		{"headers", pacetest.Config{Dialect: pacetest.OpenAI}, nil},
		{"retry-after", pacetest.Config{}, nil},
		{"configured", pacetest.Config{}, []Option{WithRate(*batchRate, burst)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			n := *batchN
			bound := time.Duration(float64(n-burst) / *batchRate * float64(time.Second))
			var elapsed time.Duration
			var refused, failed int64
			for i := 0; i < b.N; i++ {
				cfg := tc.cfg
				cfg.Rate, cfg.Burst = *batchRate, burst
				api := pacetest.NewAPI(cfg)
				rt := Pace(tc.opts...)(api.Transport())
				jobs := make(chan int, n)
				for j := range n {
					jobs <- j
				}
				close(jobs)
				start := time.Now()
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for range jobs {
							for {
								req, _ := http.NewRequest("GET", "http://api.test/v1/x", nil)
								resp, err := rt.RoundTrip(req)
								if err != nil {
									atomic.AddInt64(&failed, 1)
									break
								}
								io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
								if resp.StatusCode != http.StatusTooManyRequests {
									break
								}
								atomic.AddInt64(&refused, 1)
							}
						}
					})
				}
				wg.Wait()
				elapsed += time.Since(start)
				api.Close()
			}
			b.ReportMetric(float64(elapsed)/float64(b.N)/float64(bound), "ratio")
			b.ReportMetric(float64(refused)/float64(n*b.N), "429/req")
			if failed > 0 {
				b.ReportMetric(float64(failed)/float64(n*b.N), "fail/req")
			}
		})
	}
}

// BenchmarkPaceHotPath measures what the pacer adds to a request when no
// limit binds: compare with the base sub-benchmark.
func BenchmarkPaceHotPath(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	req, _ := http.NewRequest("GET", "http://api.test/v1/x", nil)
	req.Header.Set("Authorization", "Bearer sk-test")
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"base", base},
		{"pace", Pace()(base)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.rt.RoundTrip(req) // warm the partition
			b.ReportAllocs()
			for b.Loop() {
				tc.rt.RoundTrip(req)
			}
		})
	}
}
