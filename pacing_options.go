package pacehttp

import (
	"math"
	"net/http"
	"time"
)

// Defaults of the pacing layer. Each has an Option that overrides it.
const (
	// DefaultRateFloor is the lowest request rate, per second, the
	// adaptive pacer ever sets: a few throttles must not stall a
	// partition for minutes.
	DefaultRateFloor = 1.0

	// DefaultPartitionExpiry is how long a partition may sit unused before
	// its state is dropped. Longer than the minute windows most APIs use,
	// so that what was learned outlives a pause.
	DefaultPartitionExpiry = 10 * time.Minute

	// DefaultMaxPartitions bounds the partitions a pacer keeps: enough for
	// every key and model of a large fleet of tenants, at a few KiB each.
	DefaultMaxPartitions = 10_000

	// maxCoolDown bounds a gate, so that a hostile Retry-After cannot
	// overflow a time; WithMaxWait fails requests behind a long gate fast.
	maxCoolDown = 24 * time.Hour
)

// paceConfig holds the settings of the pacing layer.
type paceConfig struct {
	rate, tokenRate   float64 // 0: unknown, learn it
	burst, tokenBurst int
	floor             float64
	concurrency       int
	keyFunc           func(*http.Request) string
	costFunc          func(*http.Request) int
	expiry            time.Duration
	limiter           Limiter
	secret            []byte // nil: a random per-process secret
	sameModel         bool   // one partition for every model of a key
	maxPartitions     int    // 0: no bound
}

func defaultPaceConfig() paceConfig {
	return paceConfig{floor: DefaultRateFloor, expiry: DefaultPartitionExpiry, maxPartitions: DefaultMaxPartitions}
}

// WithRate states the server's request limit: perSecond requests per
// second, with bursts of up to burst (the pacer keeps a tenth of it in
// reserve, so that sends bunched by scheduling do not meet a 429). The
// pacer then sends at that rate from the first request instead of learning
// it; rate-limit headers, when the server sends them, still take
// precedence, and throttling still lowers it for a while.
//
// A rate that is not a positive, finite number is ignored (the rate is then
// learned); a burst below 1 counts as 1. A very small rate is honoured: a
// request that would wait past WithMaxWait fails at once with a *WaitError.
func WithRate(perSecond float64, burst int) PaceOption {
	return paceOption(func(c *config) {
		if positive(perSecond) {
			c.pace.rate, c.pace.burst = perSecond, max(burst, 1)
		}
	})
}

// positive reports whether x is a positive, finite number.
func positive(x float64) bool { return x > 0 && !math.IsInf(x, 1) }

// WithTokenRate states a second, token-counted limit (LLM tokens, say):
// perSecond tokens per second with bursts of up to burst. Each request then
// also draws its cost (see WithCostFunc) from this budget. Without it, a
// token budget starts only when response headers report one. Its values are
// taken as WithRate's.
func WithTokenRate(perSecond float64, burst int) PaceOption {
	return paceOption(func(c *config) {
		if positive(perSecond) {
			c.pace.tokenRate, c.pace.tokenBurst = perSecond, max(burst, 1)
		}
	})
}

// WithConcurrency caps the requests of one partition that are in flight at
// once, from sending until the response body is closed. Waiters are served
// in arrival order. Zero or less means no cap.
func WithConcurrency(n int) PaceOption {
	return paceOption(func(c *config) { c.pace.concurrency = max(n, 0) })
}

// WithKeyFunc sets how requests are grouped into partitions, each with its
// own budget and cool-down. By default the key is the URL's host, the first
// credential header present (Authorization, X-Api-Key, Api-Key,
// X-Goog-Api-Key) and the model the request names (see
// WithModelPartitions), so that separate keys and models never slow each
// other. The key is kept only as a keyed hash. A nil fn keeps the default.
func WithKeyFunc(fn func(*http.Request) string) PaceOption {
	return paceOption(func(c *config) { c.pace.keyFunc = fn })
}

// WithModelPartitions sets whether the requests of one host and credential
// are paced apart per model, the default. OpenAI, xAI and Anthropic limit
// each model separately, so a busy model must not slow an idle one; the
// model is read from the top-level "model" field of a JSON body (through
// GetBody, leaving the request untouched) or from a path such as
// /v1beta/models/{model}:generateContent (Gemini). Pass false when a key's
// limit covers all its models, so that they share one budget.
func WithModelPartitions(on bool) PaceOption {
	return paceOption(func(c *config) { c.pace.sameModel = !on })
}

// WithCostFunc sets how many tokens a request is expected to use, for the
// token budget. fn must not consume req.Body; it may read a copy through
// req.GetBody. Results below 1 count as 1. The default estimates from the
// body: a quarter of its length plus its JSON "max_tokens" value. Costs are
// computed only while a token budget is active. A nil fn keeps the default.
func WithCostFunc(fn func(*http.Request) int) PaceOption {
	return paceOption(func(c *config) { c.pace.costFunc = fn })
}

// WithRateFloor sets the lowest request rate, per second, that learning
// from throttles may set. The default is DefaultRateFloor; a value that is
// not a positive, finite number is ignored.
func WithRateFloor(perSecond float64) PaceOption {
	return paceOption(func(c *config) {
		if positive(perSecond) {
			c.pace.floor = perSecond
		}
	})
}

// WithPartitionExpiry sets how long an unused partition keeps its state.
// It is dropped within half that time more, and at least a second apart
// from the last look (so that a tiny expiry costs no CPU). Zero or less
// keeps partitions for the life of the transport.
func WithPartitionExpiry(d time.Duration) PaceOption {
	return paceOption(func(c *config) { c.pace.expiry = max(d, 0) })
}

// WithMaxPartitions bounds how many partitions the pacer keeps at once
// (DefaultMaxPartitions unless set). When a new one is needed and n are
// kept, the one unused for longest is dropped, unless a request is inside
// every one. Zero or less removes the bound.
func WithMaxPartitions(n int) PaceOption {
	return paceOption(func(c *config) { c.pace.maxPartitions = max(n, 0) })
}

// WithLimiter makes the pacer keep its budgets and cool-downs in l, for
// instance a store shared by a fleet of processes. The default keeps them in
// process memory, as does a nil l.
func WithLimiter(l Limiter) PaceOption {
	return paceOption(func(c *config) { c.pace.limiter = l })
}

// WithPartitionSecret sets the secret under which partition names are
// hashed (an HMAC of the credential). By default each process draws a
// random one, so names differ between processes; processes that share a
// Limiter (see WithLimiter) must share a secret too, or they will not find
// each other's budgets. Keep it as secret as the credentials it hides: with
// it, a guessed credential can be checked against a stored name. An empty
// secret keeps the random one.
func WithPartitionSecret(secret []byte) PaceOption {
	return paceOption(func(c *config) { c.pace.secret = append([]byte(nil), secret...) })
}
