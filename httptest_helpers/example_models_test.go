package pacetest_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// status sends a GET through rt and returns the status and Retry-After.
func status(rt http.RoundTripper, path string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://api.example"+path, nil)
	return answer(rt, req)
}

func answer(rt http.RoundTripper, req *http.Request) string {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		return fmt.Sprintf("%d retry-after=%s", resp.StatusCode, ra)
	}
	return fmt.Sprint(resp.StatusCode)
}

// A fixed window: at most Quota requests in each Window, and a refusal asks
// to wait until the window ends.
func ExampleConfig_fixedWindow() {
	api := pacetest.NewAPI(pacetest.Config{Window: time.Hour, Quota: 2})
	defer api.Close()
	for range 3 {
		fmt.Println(status(api.Transport(), "/v1/items"))
	}
	// Output:
	// 200
	// 200
	// 429 retry-after=3600
}

// A sliding window admits a request if fewer than Quota were admitted in
// the Window before it; here the refusal says in milliseconds when the
// oldest leaves.
func ExampleConfig_slidingWindow() {
	api := pacetest.NewAPI(pacetest.Config{Window: time.Hour, Quota: 1, Sliding: true, RetryAfter: pacetest.RetryAfterMillis})
	defer api.Close()
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, "http://api.example/v1/items", nil)
		resp, err := api.Transport().RoundTrip(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		ms := resp.Header.Get("Retry-After-Ms")
		fmt.Println(resp.StatusCode, len(ms) == 7 && ms <= "3600000")
	}
	// Output:
	// 200 false
	// 429 true
}

// A concurrency cap, as DeepSeek's: while MaxInFlight requests are being
// served, another gets a bare 429 with no hint at all.
func ExampleConfig_maxInFlight() {
	api := pacetest.NewAPI(pacetest.Config{MaxInFlight: 1, Latency: 100 * time.Millisecond})
	defer api.Close()
	first := make(chan string)
	go func() { first <- status(api.Transport(), "/v1/chat") }()
	for api.Stats().Accepted == 0 {
		time.Sleep(time.Millisecond) // until the first is being served
	}
	fmt.Println("second:", status(api.Transport(), "/v1/chat"))
	fmt.Println("first:", <-first)
	for api.Answers()[0].Done.IsZero() {
		time.Sleep(time.Millisecond) // until the server has let it go
	}
	fmt.Println("third:", status(api.Transport(), "/v1/chat"))
	// Output:
	// second: 429
	// first: 200
	// third: 200
}

// A limit that changes while a client runs: here the quota of an hourly
// window falls from 5 to 1 after 50ms.
func ExampleConfig_schedule() {
	api := pacetest.NewAPI(pacetest.Config{Window: time.Hour, Quota: 5, Schedule: []pacetest.Change{
		{At: 50 * time.Millisecond, Quota: 1},
	}})
	defer api.Close()
	fmt.Println(status(api.Transport(), "/"), status(api.Transport(), "/"))
	time.Sleep(60 * time.Millisecond)
	fmt.Println(status(api.Transport(), "/"))
	// Output:
	// 200 200
	// 429 retry-after=3600
}

// An overloaded server in spells: every request in a spell is answered 529,
// with no hint unless OverloadBursts.RetryAfter is set.
func ExampleOverloadBursts() {
	api := pacetest.NewAPI(pacetest.Config{OverloadBursts: pacetest.OverloadBursts{Every: time.Hour, For: 50 * time.Millisecond}})
	defer api.Close()
	fmt.Println(status(api.Transport(), "/v1/messages"))
	time.Sleep(60 * time.Millisecond)
	fmt.Println(status(api.Transport(), "/v1/messages"))
	fmt.Println(api.Stats().Overloaded, "overloaded")
	// Output:
	// 529
	// 200
	// 1 overloaded
}

// A penalty box: a client that exceeds the limit is refused everything for
// a while, and each request meanwhile starts the penalty again.
func ExampleConfig_penalty() {
	api := pacetest.NewAPI(pacetest.Config{Rate: 1000, Burst: 1, Penalty: time.Minute, PenaltyExtends: true})
	defer api.Close()
	for range 3 {
		fmt.Println(status(api.Transport(), "/v1/items"))
	}
	// Output:
	// 200
	// 429 retry-after=60
	// 429 retry-after=60
}

// Limits per model: a request names its model in its JSON body, or in a
// Gemini-style path, and a busy model leaves the others alone.
func ExampleConfig_models() {
	api := pacetest.NewAPI(pacetest.Config{Models: map[string]pacetest.Limits{
		"big":   {Rate: 0.001, Burst: 1},
		"small": {Rate: 0.001, Burst: 2},
	}})
	defer api.Close()
	post := func(model string) string {
		req, _ := http.NewRequest(http.MethodPost, "http://api.example/v1/chat/completions", strings.NewReader(`{"model":"`+model+`"}`))
		return answer(api.Transport(), req)
	}
	fmt.Println("big:", post("big"), post("big"))
	fmt.Println("small:", post("small"), post("small"))
	fmt.Println("gemini path:", status(api.Transport(), "/v1beta/models/small:generateContent"))
	fmt.Println(api.Stats().Models["small"].Refused, "refused for small")
	// Output:
	// big: 200 429 retry-after=1000
	// small: 200 200
	// gemini path: 429 retry-after=1000
	// 1 refused for small
}

// The ways a refusal can announce its wait.
func ExampleRetryAfter() {
	for _, f := range []pacetest.RetryAfter{pacetest.RetryAfterSeconds, pacetest.RetryAfterNone, pacetest.RetryAfterMillis, pacetest.RetryAfterFraction, pacetest.RetryAfterDate} {
		api := pacetest.NewAPI(pacetest.Config{Window: time.Hour, RetryAfter: f})
		req, _ := http.NewRequest(http.MethodGet, "http://api.example/", nil)
		resp, err := api.Transport().RoundTrip(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		var names []string
		for _, h := range []string{"Retry-After", "Retry-After-Ms", "Date"} {
			if resp.Header.Get(h) != "" {
				names = append(names, h)
			}
		}
		fmt.Printf("%-8v %d %v\n", f, resp.StatusCode, names)
		api.Close()
	}
	// Output:
	// Seconds  429 [Retry-After]
	// None     429 []
	// Millis   429 [Retry-After-Ms]
	// Fraction 429 [Retry-After]
	// Date     429 [Retry-After Date]
}
