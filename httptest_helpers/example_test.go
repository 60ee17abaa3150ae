package pacetest_test

import (
	"fmt"
	"io"
	"net/http"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func ExampleNewScripted() {
	srv := pacetest.NewScripted(
		pacetest.TooManyRequests("1"),
		pacetest.OK(`{"answer":42}`),
	)
	defer srv.Close()

	for range 3 {
		resp, err := srv.Client().Get(srv.URL() + "/v1/answer")
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d retry-after=%q %s\n", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	fmt.Println("requests:", len(srv.Requests()), "connections:", srv.Conns())
	// Output:
	// 429 retry-after="1" {"error":{"type":"rate_limit_error","message":"rate limit exceeded"}}
	// 200 retry-after="" {"answer":42}
	// 200 retry-after="" {"answer":42}
	// requests: 3 connections: 1
}

func ExampleNewAPI() {
	api := pacetest.NewAPI(pacetest.Config{Rate: 1, Burst: 2, Dialect: pacetest.OpenAI})
	defer api.Close()
	client := &http.Client{Transport: api.Transport()} // in memory, no sockets

	for range 3 {
		resp, err := client.Get("http://api.example/v1/chat")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Printf("%d remaining=%s retry-after=%q\n", resp.StatusCode,
			resp.Header.Get("X-Ratelimit-Remaining-Requests"), resp.Header.Get("Retry-After"))
	}
	st := api.Stats()
	fmt.Println("accepted:", st.Accepted, "refused:", st.Refused)
	// Output:
	// 200 remaining=1 retry-after=""
	// 200 remaining=0 retry-after=""
	// 429 remaining=0 retry-after="1"
	// accepted: 2 refused: 1
}
