package pacehttp

import (
	"flag"
	"testing"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

var (
	batchN    = flag.Int("pace.n", 1000, "requests per batch in BenchmarkPaceBatch")
	batchRate = flag.Float64("pace.rate", 200, "server rate in BenchmarkPaceBatch")
)

// BenchmarkPaceBatch sends a batch of requests from 32 workers through the
// full chain (New) to a fake API limited to pace.rate requests per second
// with a burst of 20, and reports how close the batch comes to the physical
// bound (N - burst)/rate (ratio), how many 429s the server sent per request
// (429/req), and the share of requests that did not end in a 200 (fail/req).
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
				rt := New(api.Transport(), append([]Option{WithMaxAttempts(20)}, tc.opts...)...)
				e, f := chainBatch(b, rt, n, workers, time.Hour, nil)
				elapsed += e
				failed += int64(f)
				refused += int64(api.Stats().Refused)
				api.Close()
			}
			b.ReportMetric(float64(elapsed)/float64(b.N)/float64(bound), "ratio")
			b.ReportMetric(float64(refused)/float64(n*b.N), "429/req")
			b.ReportMetric(float64(failed)/float64(n*b.N), "fail/req")
		})
	}
}
