package pacehttp

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func TestDebugTokens(t *testing.T) {
	api := pacetest.NewAPI(pacetest.Config{Rate: 200, Burst: 20, TokenRate: 8000, TokenBurst: 8000, Latency: 10 * time.Millisecond, Dialect: pacetest.OpenAI})
	defer api.Close()
	start := time.Now()
	var nfail atomic.Int32
	var paced atomic.Int64
	rt := New(&http.Transport{MaxIdleConnsPerHost: 64}, WithHook(func(e Event) {
		switch e.Kind {
		case EventPaced:
			paced.Add(int64(e.Wait))
		case EventCoolDown, EventRateChange:
			fmt.Printf("%6.3f %v rate=%.1f wait=%v reason=%s\n", time.Since(start).Seconds(), e.Kind, e.Rate, e.Wait, e.Reason)
		}
	}))
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(9*time.Second))
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 1))
	jobs := make(chan int, 320)
	for range 320 {
		jobs <- 20 + rng.IntN(161)
	}
	close(jobs)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for cost := range jobs {
				body := `{"prompt":"` + strings.Repeat("x", cost*4-13) + `"}`
				req, _ := http.NewRequestWithContext(ctx, "POST", api.URL()+"/v1/messages", bytes.NewReader([]byte(body)))
				resp, err := rt.RoundTrip(req)
				if err != nil {
					if nfail.Add(1) < 3 {
						fmt.Println(err)
					}
					continue
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	fmt.Println("elapsed", time.Since(start), "failed", nfail.Load(), api.Stats().Refused, "paced", time.Duration(paced.Load()))
}
