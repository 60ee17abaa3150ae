package redislimit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// The Limiter's events (each call to Redis with its latency, Redis going
// away and coming back, requests refused, go-redis's own messages) go to
// the same hook as the pacer's: here a log/slog logger, through
// pacehttp.LogHook; otelpace.NewHook records them as metrics.
func ExampleWithHook() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	hook := pacehttp.LogHook(slog.Default())
	lim := redislimit.New(rdb, redislimit.WithHook(hook))
	defer lim.Close()
	client := &http.Client{Transport: pacehttp.New(nil,
		pacehttp.WithLimiter(lim),
		pacehttp.WithHook(hook),
		pacehttp.WithPartitionSecret([]byte(os.Getenv("PACE_SECRET"))),
	)}
	if resp, err := client.Get("https://api.example.com/v1/models"); err == nil {
		resp.Body.Close()
	}
}

// A fleet of 20 worker processes, each told the fleet's size: a process
// that cannot reach Redis from the start paces at a twentieth of the
// limit it states, not at the whole of it. Once Redis has counted the
// processes, the count it keeps replaces the one given.
func ExampleWithFleetSize() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	lim := redislimit.New(rdb, redislimit.WithFleetSize(20))
	defer lim.Close()
	client := &http.Client{Transport: pacehttp.New(nil,
		pacehttp.WithLimiter(lim),
		pacehttp.WithRate(100, 10), // the API's limit, for the whole fleet
		pacehttp.WithPartitionSecret([]byte(os.Getenv("PACE_SECRET"))),
	)}
	if resp, err := client.Get("https://api.example.com/v1/models"); err == nil {
		resp.Body.Close()
	}
}

// Redis counts what the whole fleet sends through a partition, and the
// refusals its processes report: the fleet's delivery rate, which no
// process sees alone.
func ExampleCounter() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	lim := redislimit.New(rdb)
	defer lim.Close()
	// The partition's name, as the pacer's events carry it.
	budget := lim.Budget("api.example.com#0123456789abcdef").(redislimit.Counter)
	now := time.Now()
	counts, err := budget.Counts(context.Background(), now, now.Add(-10*time.Second), now)
	if err != nil {
		fmt.Println(err)
		return
	}
	sent, refused := counts.Between(now.Add(-10*time.Second), now)
	fmt.Printf("accepted %.1f/s over the last 10s\n", float64(sent-refused)/10)
}
