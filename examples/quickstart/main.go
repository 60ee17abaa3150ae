// Command quickstart sends one request through pacehttp to a scripted fake
// API that refuses it twice with 429 Too Many Requests, and prints what
// pacehttp did about it. It needs no setup: go run ./examples/quickstart
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func main() {
	api := pacetest.NewScripted(
		pacetest.TooManyRequests("1"),
		pacetest.Status(http.StatusTooManyRequests, "retry-after-ms", "250"),
		pacetest.OK(`{"id":"msg_1","content":"hello"}`),
	)
	defer api.Close()

	client := pacehttp.NewClient(
		pacehttp.WithMaxAttempts(5),
		pacehttp.WithHook(func(e pacehttp.Event) {
			switch e.Kind {
			case pacehttp.EventAttempt:
				fmt.Printf("attempt %d\n", e.Attempt)
			case pacehttp.EventRetry:
				fmt.Printf("  -> %s, retrying in %v\n", e.Reason, e.Wait.Round(1e6))
			case pacehttp.EventGiveUp:
				fmt.Printf("  -> giving up: %s\n", e.Reason)
			}
		}),
	)
	resp, err := client.Post(api.URL()+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"m","max_tokens":16}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, body)

	for i, r := range api.Requests() {
		fmt.Printf("server saw request %d: %s %s body sha256 %.12s\n", i+1, r.Method, r.Path, r.BodySHA256)
	}
}
