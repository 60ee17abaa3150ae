package redislimit_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/pacehttp/pacehttp/redislimit"
	"github.com/redis/go-redis/v9"
)

// Every process of a fleet builds its client the same way: one Redis, one
// partition secret. Together they then keep to the API's limit.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // let WithTimeout cut a slow call short
	})
	defer rdb.Close()

	lim := redislimit.New(rdb,
		redislimit.WithPrefix("myapp:pace:"),
		redislimit.WithTimeout(50*time.Millisecond),
		redislimit.WithFailMode(redislimit.FailOpen), // the default
	)
	defer lim.Close()
	client := &http.Client{Transport: pacehttp.New(nil,
		pacehttp.WithLimiter(lim),
		// The same in every process, or their partitions will differ.
		pacehttp.WithPartitionSecret([]byte(os.Getenv("PACE_SECRET"))),
	)}

	req, _ := http.NewRequest("GET", "https://api.example.com/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+os.Getenv("API_KEY"))
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
}

// Under FailClosed, a request that cannot reach Redis fails at once with an
// *UnavailableError instead of being sent unpaced.
func ExampleFailClosed() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	lim := redislimit.New(rdb, redislimit.WithFailMode(redislimit.FailClosed))
	defer lim.Close()
	client := &http.Client{Transport: pacehttp.New(nil,
		pacehttp.WithLimiter(lim),
		pacehttp.WithPartitionSecret([]byte(os.Getenv("PACE_SECRET"))),
	)}
	resp, err := client.Get("https://api.example.com/v1/models")
	if ue, ok := errors.AsType[*redislimit.UnavailableError](err); ok {
		fmt.Println("not sent: redis unavailable:", ue.Err)
		return
	}
	if err == nil {
		resp.Body.Close()
	}
}
