package pacetest

import (
	"math/rand/v2"
	"time"
)

// serviceTime is the service time of the matrix's servers unless said.
const serviceTime = 10 * time.Millisecond

// Scenarios returns the scenario matrix the project measures clients on:
// every kind of server issue 11 names, the sizes it names, and cases a
// careful user would try. Each call returns fresh values, which the caller
// may change. The demo's default run is "article" and "article-openai".
func Scenarios() []Scenario {
	batch := func(n, workers int) []Stream {
		return []Stream{{Name: "batch", Requests: n, Workers: workers}}
	}
	bucket := func(rate float64, burst int) Config {
		return Config{Rate: rate, Burst: burst, Latency: serviceTime}
	}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }

	return []Scenario{
		{
			Name:        "retry-after",
			Description: "token bucket 100/s, burst 10; a 429 carries only Retry-After in whole seconds",
			Server:      bucket(100, 10),
			Streams:     batch(400, 32),
		},
		{
			Name:        "article",
			Description: "the article's case: token bucket 200/s, burst 20; a 429 carries only Retry-After",
			Server:      bucket(200, 20),
			Streams:     batch(320, 64),
		},
		{
			Name:        "article-openai",
			Description: "the same with OpenAI's x-ratelimit-* headers on every answer",
			Server:      with(bucket(200, 20), func(c *Config) { c.Dialect = OpenAI }),
			Streams:     batch(320, 64),
		},
		{
			Name:        "stated-rate",
			Description: "the article's server, the client told the limit (200/s, burst 20)",
			Server:      bucket(200, 20),
			Streams:     batch(320, 64),
			Stated:      true,
		},
		{
			Name:        "anthropic",
			Description: "token bucket 100/s, burst 10, Anthropic's headers (RFC 3339 resets in whole seconds)",
			Server:      with(bucket(100, 10), func(c *Config) { c.Dialect = Anthropic }),
			Streams:     batch(400, 32),
		},
		{
			Name:        "retry-after-ms",
			Description: "token bucket 100/s, burst 10; a 429 carries only retry-after-ms",
			Server:      with(bucket(100, 10), func(c *Config) { c.RetryAfter = RetryAfterMillis }),
			Streams:     batch(400, 32),
		},
		{
			Name:        "http-date",
			Description: "token bucket 100/s, burst 10; Retry-After is an HTTP-date, beside Date",
			Server:      with(bucket(100, 10), func(c *Config) { c.RetryAfter = RetryAfterDate }),
			Streams:     batch(400, 32),
		},
		{
			Name:        "no-hint",
			Description: "token bucket 100/s, burst 10; a bare 429 with no hint at all, as many proxies answer",
			Server:      with(bucket(100, 10), func(c *Config) { c.RetryAfter = RetryAfterNone }),
			Streams:     batch(400, 32),
		},
		{
			Name:        "small-burst",
			Description: "token bucket 20/s, burst 2; a 429 carries only Retry-After",
			Server:      bucket(20, 2),
			Streams:     batch(120, 16),
		},
		{
			Name:        "jitter",
			Description: "token bucket 100/s, burst 10, service times of 5-50ms; Retry-After only",
			Server:      Config{Rate: 100, Burst: 10, Latency: 5 * time.Millisecond, LatencyJitter: 45 * time.Millisecond, Seed: 7},
			Streams:     batch(400, 32),
		},
		{
			Name:        "limit-falls",
			Description: "token bucket 100/s, burst 10, halved to 50/s at 2s; Retry-After only",
			Server:      with(bucket(100, 10), func(c *Config) { c.Schedule = []Change{{At: 2 * time.Second, Rate: 50}} }),
			Streams:     batch(500, 32),
		},
		{
			Name:        "limit-rises",
			Description: "token bucket 50/s, burst 10, raised to 100/s at 3s; Retry-After only",
			Server:      with(bucket(50, 10), func(c *Config) { c.Schedule = []Change{{At: 3 * time.Second, Rate: 100}} }),
			Streams:     batch(800, 32),
		},
		{
			Name:        "fixed-window",
			Description: "fixed window of 50 requests per 500ms; Retry-After to the window's end",
			Server:      Config{Window: 500 * time.Millisecond, Quota: 50, Latency: serviceTime},
			Streams:     batch(400, 32),
		},
		{
			Name:        "sliding-window",
			Description: "at most 100 requests in any 1s; Retry-After until the oldest leaves",
			Server:      Config{Window: time.Second, Quota: 100, Sliding: true, Latency: serviceTime},
			Streams:     batch(400, 32),
		},
		{
			Name:        "concurrency-cap",
			Description: "at most 8 requests in flight, 50ms each; a bare 429 beyond, as DeepSeek answers",
			Server:      Config{MaxInFlight: 8, Latency: 50 * time.Millisecond},
			Streams:     batch(400, 32),
		},
		{
			Name:        "overload-bursts",
			Description: "token bucket 100/s, burst 10; every request answered 529 without a hint for 1s in every 3s from 1s",
			Server: with(bucket(100, 10), func(c *Config) {
				c.OverloadBursts = OverloadBursts{Every: 3 * time.Second, For: time.Second, Offset: time.Second}
			}),
			Streams: batch(400, 32),
		},
		{
			Name:        "overload-random",
			Description: "token bucket 200/s, burst 20, OpenAI headers; 20% of admitted requests answered 503 or 529",
			Server: with(bucket(200, 20), func(c *Config) {
				c.Dialect, c.Overload, c.Seed = OpenAI, 0.2, 1
			}),
			Streams: batch(320, 64),
		},
		{
			Name:        "penalty-box",
			Description: "token bucket 100/s, burst 10; exceeding it suspends the key for 2s, each request meanwhile restarting the 2s",
			Server: with(bucket(100, 10), func(c *Config) {
				c.Penalty, c.PenaltyExtends = 2*time.Second, true
			}),
			Streams: batch(400, 32),
		},
		{
			Name:        "tokens",
			Description: "480000 tokens/min (a bucket of one second's worth) and 200 req/s, OpenAI headers; requests cost 20-180 tokens",
			Server:      Config{Rate: 200, Burst: 20, TokenRate: 8000, TokenBurst: 8000, Dialect: OpenAI, Latency: serviceTime},
			Streams:     []Stream{{Name: "batch", Requests: 320, Workers: 64, Costs: costs(320, 1)}},
		},
		{
			Name:        "shared-key",
			Description: "four independent clients on one key limited to 100/s, burst 10; Retry-After only",
			Server:      with(bucket(100, 10), func(c *Config) { c.PerKey = true }),
			Clients:     4,
			Streams:     shared(4, 300, 8),
		},
		{
			Name:        "shared-key-openai",
			Description: "four independent clients on one key limited to 100/s, burst 10; OpenAI headers state the key's whole limit",
			Server:      with(bucket(100, 10), func(c *Config) { c.PerKey, c.Dialect = true, OpenAI }),
			Clients:     4,
			Streams:     shared(4, 300, 8),
		},
		{
			Name:        "per-model",
			Description: "one key, two models: fast at 100/s burst 10, slow at 5/s burst 1; Retry-After only",
			Server: Config{Latency: serviceTime, Models: map[string]Limits{
				"fast": {Rate: 100, Burst: 10},
				"slow": {Rate: 5, Burst: 1},
			}},
			Streams: []Stream{
				{Name: "fast", Model: "fast", Requests: 400, Workers: 16},
				{Name: "slow", Model: "slow", Requests: 40, Workers: 4},
			},
		},
		{
			Name:        "open-loop",
			Description: "token bucket 100/s, burst 10; requests arrive at random at 70/s, below the limit",
			Server:      bucket(100, 10),
			Streams:     []Stream{{Name: "arrivals", Requests: 700, Arrivals: 70, Poisson: true, Seed: 1}},
		},
		{
			Name:        "llm-per-minute",
			Description: "60 requests a minute (bucket of 60 refilled at 1/s), answers taking 1-2s; Retry-After only",
			Server:      Config{Rate: 1, Burst: 60, Latency: time.Second, LatencyJitter: time.Second, Seed: 3},
			Streams:     batch(200, 16),
		},
		{
			Name:        "refuse-all",
			Description: "a key with no quota: every request refused with Retry-After: 1; callers wait at most 5s",
			Server:      Config{Window: time.Second, Quota: 0, Latency: serviceTime},
			Streams:     []Stream{{Name: "batch", Requests: 16, Workers: 4, Deadline: 5 * time.Second}},
		},
		{
			Name:        "cancelled-waiters",
			Description: "token bucket 10/s, burst 10: a batch, then 50 callers who give up after 300ms, then one more at 7.5s",
			Server:      bucket(10, 10),
			Streams: []Stream{
				{Name: "warm-up", Requests: 60, Workers: 8},
				{Name: "waiters", Requests: 50, Workers: 50, Start: 6 * time.Second, Deadline: 300 * time.Millisecond},
				{Name: "late", Requests: 1, Workers: 1, Start: 7500 * time.Millisecond},
			},
		},
		{
			Name:        "short-deadlines",
			Description: "token bucket 10/s, burst 5: 100 callers at once who wait at most 500ms, then a batch from 3s",
			Server:      bucket(10, 5),
			Streams: []Stream{
				{Name: "rush", Requests: 100, Workers: 100, Deadline: 500 * time.Millisecond},
				{Name: "after", Requests: 40, Workers: 4, Start: 3 * time.Second},
			},
		},
	}
}

// ScenarioNamed returns the scenario of Scenarios with that name.
func ScenarioNamed(name string) (Scenario, bool) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// shared splits a batch over clients, one stream each.
func shared(clients, each, workers int) []Stream {
	ss := make([]Stream, clients)
	for i := range ss {
		ss[i] = Stream{Name: "client " + string(rune('A'+i)), Client: i, Requests: each, Workers: workers}
	}
	return ss
}

// costs draws n token costs of 20 to 180, mean 100, from seed.
func costs(n int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 1))
	c := make([]int, n)
	for i := range c {
		c[i] = 20 + rng.IntN(161)
	}
	return c
}
