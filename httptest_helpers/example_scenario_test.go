package pacetest_test

import (
	"fmt"
	"net/http"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// The physical bound of a scenario: how fast a client that knows the
// server's rules could get through its work. Under a cap of 8 requests in
// flight, 400 requests of 50ms take at least 400*50ms/8.
func ExampleScenario_Bound() {
	s := pacetest.Scenario{
		Server:  pacetest.Config{MaxInFlight: 8, Latency: 50 * time.Millisecond},
		Streams: []pacetest.Stream{{Name: "batch", Requests: 400, Workers: 32}},
	}
	fmt.Println(s.Bound().Total)
	// Output: 2.5s
}

// Run a client through a scenario. In a test, call Run inside
// synctest.Test: the run is then exact and takes no real time. Here it runs
// in real time, on a scenario with no limit.
func ExampleRunner() {
	s := pacetest.Scenario{
		Name:    "unlimited",
		Server:  pacetest.Config{Latency: 10 * time.Millisecond},
		Streams: []pacetest.Stream{{Name: "batch", Requests: 20, Workers: 10}},
	}
	r, err := pacetest.Runner{}.Run(s, func(base http.RoundTripper) http.RoundTripper {
		return pacetest.NaiveRetry(base, 5) // or the client under test
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bound:", r.Bound)
	fmt.Println("requests:", r.Requests, "failed:", r.Failed, "429s:", r.Refused, "at least the bound:", r.Ratio >= 1)
	// Output:
	// bound: 20ms
	// requests: 20 failed: 0 429s: 0 at least the bound: true
}

// The scenario matrix the project holds its pacer to.
func ExampleScenarios() {
	for _, s := range pacetest.Scenarios()[:4] {
		fmt.Printf("%s: %s\n", s.Name, s.Description)
	}
	// Output:
	// retry-after: token bucket 100/s, burst 10; a 429 carries only Retry-After in whole seconds
	// article: the article's case: token bucket 200/s, burst 20; a 429 carries only Retry-After
	// article-openai: the same with OpenAI's x-ratelimit-* headers on every answer
	// stated-rate: the article's server, the client told the limit (200/s, burst 20)
}

// The naive retry loop: it waits what Retry-After says, and nothing else.
func ExampleNaiveRetry() {
	srv := pacetest.NewScripted(pacetest.TooManyRequests("0"), pacetest.OK(`{}`))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://api.example/v1/items", nil)
	resp, err := pacetest.NaiveRetry(srv.Transport(), 5).RoundTrip(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", len(srv.Requests()), "attempts")
	// Output: 200 after 2 attempts
}
