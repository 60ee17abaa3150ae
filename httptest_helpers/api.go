package pacetest

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config describes the limits of a fake API. The zero Config is an API with
// no limits, which answers every request 200.
type Config struct {
	// Rate is the request limit, in requests per second: the refill rate of
	// a token bucket that each request takes one token from. Zero or less
	// means no request limit.
	Rate float64
	// Burst is the size of the request bucket, which starts full.
	// Zero means one second's worth of Rate, at least 1.
	Burst int

	// TokenRate is the token limit, in tokens per second, as AI APIs count
	// input tokens. Zero or less means no token limit.
	TokenRate float64
	// TokenBurst is the size of the token bucket, which starts full.
	// Zero means one second's worth of TokenRate, at least 1. A request
	// costing more than TokenBurst could never be served, and is answered
	// 413 rather than 429.
	TokenBurst int
	// Cost returns the tokens a request costs. Nil means len(body)/4, at
	// least 1.
	Cost func(r *http.Request, body []byte) int

	// Dialect selects the rate-limit headers sent on every answer.
	Dialect Dialect
	// PerKey gives each credential (Authorization or x-api-key header) its
	// own buckets; otherwise all requests share one set.
	PerKey bool
	// Latency is the service time of an accepted request. The wait ends
	// early, with no answer, if the request's context ends.
	Latency time.Duration
	// Overload is the fraction of admitted requests answered as an
	// overloaded server does, alternately 503 and 529, instead of 200.
	// Which ones is random but fixed by Seed. They still use up quota.
	Overload float64
	// Seed seeds the choice of overloaded requests.
	Seed uint64
	// ResponseBody is the body of a 200. Empty means a small JSON object.
	ResponseBody string
}

// Stats counts what an API has done since it was created.
type Stats struct {
	Requests        int // every request, answered or not
	Accepted        int // admitted by the limiter and answered 200
	Refused         int // answered 429
	Overloaded      int // admitted, then answered 503 or 529
	TooLarge        int // answered 413: cost above TokenBurst
	PeakConcurrency int // most requests in the handler at once
	// Timeline[i] counts the requests accepted during second i since the
	// API was created; RefusedTimeline likewise counts refusals. Both are
	// as long as the last second anything happened in.
	Timeline        []int
	RefusedTimeline []int
}

// API is a fake rate-limited API. Each request is checked against a token
// bucket of requests (Config.Rate and Burst) and one of tokens (TokenRate
// and TokenBurst); it is admitted only if both have enough, and then takes
// from both, so a request refused on one limit uses none of the other.
// A refusal is a 429 with a Retry-After in whole seconds, rounded up, a JSON
// error body, and the rate-limit headers of the Dialect.
//
// The buckets read time.Now at each request, so under testing/synctest with
// Transport the answers are exactly reproducible. Create an API with NewAPI;
// it is safe for concurrent use.
type API struct {
	s     server
	cfg   Config
	start time.Time

	mu        sync.Mutex
	rate      float64
	limits    map[string]*limits
	rng       *rand.Rand
	overloads int
	inFlight  int
	stats     Stats
}

// limits are the buckets of one credential.
type limits struct {
	req *rate.Limiter // unused while the request rate is not positive
	tok *rate.Limiter // nil when tokens are not limited
}

// NewAPI returns a fake API with the given limits. Close it when done.
func NewAPI(cfg Config) *API {
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.Rate))
	}
	if cfg.TokenBurst <= 0 {
		cfg.TokenBurst = max(1, int(cfg.TokenRate))
	}
	if cfg.Cost == nil {
		cfg.Cost = func(_ *http.Request, body []byte) int { return max(1, len(body)/4) }
	}
	if cfg.ResponseBody == "" {
		cfg.ResponseBody = `{"id":"pacetest","object":"response","status":"ok"}`
	}
	a := &API{
		cfg:    cfg,
		start:  time.Now(),
		rate:   cfg.Rate,
		limits: make(map[string]*limits),
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed)),
	}
	a.s.handler = http.HandlerFunc(a.serve)
	return a
}

// URL returns the base URL of the API, of the form http://ipaddr:port,
// starting its loopback listener on first use. It panics after Close.
func (a *API) URL() string { return a.s.url() }

// Client returns an HTTP client configured for the API, starting its
// loopback listener on first use. Close closes the client's idle connections.
// It panics after Close.
func (a *API) Client() *http.Client { return a.s.client() }

// Close shuts down the listener, if it was started, and blocks until all
// outstanding requests on it have completed.
func (a *API) Close() { a.s.close() }

// Conns returns the number of TCP connections the API has accepted.
func (a *API) Conns() int { return a.s.connCount() }

// Handler returns the API as a handler, with no network. Requests it
// serves count against the same limits as any others.
func (a *API) Handler() http.Handler { return a.s.handler }

// Transport returns a RoundTripper that serves requests in memory, without
// sockets; use it with testing/synctest.
func (a *API) Transport() http.RoundTripper { return a.s.transport() }

// SetRate changes the request rate of every bucket from now on, as a
// vendor lowering a limit under load does; tokens already in a bucket stay.
// It takes the same values as Config.Rate.
func (a *API) SetRate(r float64) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rate = r
	for _, l := range a.limits {
		l.setRate(now, r)
	}
}

// Stats returns a snapshot of the API's counters.
func (a *API) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Timeline = slices.Clone(s.Timeline)
	s.RefusedTimeline = slices.Clone(s.RefusedTimeline)
	return s
}

func (l *limits) setRate(now time.Time, r float64) {
	// While requests are unlimited the bucket is neither used nor refilled,
	// so it resumes where it was.
	l.req.SetLimitAt(now, rate.Limit(max(r, 0)))
}

// verdict is what the limiter decided for one request.
type verdict int

const (
	accept verdict = iota
	refuse
	overload
	tooLarge
)

// decision is a verdict with what the headers need, taken under one lock at
// one instant so that they agree with each other.
type decision struct {
	verdict    verdict
	status     int
	retryAfter int // seconds; refusals only
	req, tok   bucket
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	cost := a.cfg.Cost(r, body)
	key := ""
	if a.cfg.PerKey {
		key = r.Header.Get("Authorization")
		if key == "" {
			key = r.Header.Get("X-Api-Key")
		}
	}

	a.mu.Lock()
	a.inFlight++
	a.stats.PeakConcurrency = max(a.stats.PeakConcurrency, a.inFlight)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inFlight--
		a.mu.Unlock()
	}()

	now := time.Now()
	d := a.decide(key, cost, now)
	writeRateHeaders(w.Header(), a.cfg.Dialect, now, d.req, d.tok)
	switch d.verdict {
	case refuse:
		w.Header().Set("Retry-After", strconv.Itoa(d.retryAfter))
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate limit exceeded, retry after "+strconv.Itoa(d.retryAfter)+"s")
	case tooLarge:
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "request costs "+strconv.Itoa(cost)+" tokens, more than the limit of "+strconv.Itoa(a.cfg.TokenBurst))
	case overload:
		writeError(w, d.status, "overloaded_error", "overloaded")
	case accept:
		if !sleep(r.Context(), a.cfg.Latency) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, a.cfg.ResponseBody)
	}
}

func (a *API) decide(key string, cost int, now time.Time) decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Requests++

	l := a.limits[key]
	if l == nil {
		l = &limits{req: rate.NewLimiter(rate.Limit(max(a.rate, 0)), a.cfg.Burst)}
		if a.cfg.TokenRate > 0 {
			l.tok = rate.NewLimiter(rate.Limit(a.cfg.TokenRate), a.cfg.TokenBurst)
		}
		a.limits[key] = l
	}
	reqLimited := a.rate > 0

	var d decision
	// Check both buckets before taking from either.
	var wait float64 // seconds until the refused request would fit
	if reqLimited {
		if have := l.req.TokensAt(now); have < 1 {
			wait = (1 - have) / a.rate
		}
	}
	if l.tok != nil {
		if cost > a.cfg.TokenBurst {
			d.verdict = tooLarge
		} else if have := l.tok.TokensAt(now); have < float64(cost) {
			wait = max(wait, (float64(cost)-have)/a.cfg.TokenRate)
		}
	}
	second := int(now.Sub(a.start) / time.Second)
	switch {
	case d.verdict == tooLarge:
		a.stats.TooLarge++
	case wait > 0:
		d.verdict = refuse
		// Round up, so that a client that waits exactly Retry-After finds
		// room; the epsilon keeps float noise from adding a second.
		d.retryAfter = max(1, int(math.Ceil(wait-1e-9)))
		a.stats.Refused++
		a.stats.RefusedTimeline = bump(a.stats.RefusedTimeline, second)
	default:
		if reqLimited {
			l.req.AllowN(now, 1)
		}
		if l.tok != nil {
			l.tok.AllowN(now, cost)
		}
		if a.cfg.Overload > 0 && a.rng.Float64() < a.cfg.Overload {
			d.verdict = overload
			d.status = http.StatusServiceUnavailable
			if a.overloads%2 == 1 {
				d.status = 529 // Anthropic's "overloaded"
			}
			a.overloads++
			a.stats.Overloaded++
		} else {
			d.verdict = accept
			a.stats.Accepted++
			a.stats.Timeline = bump(a.stats.Timeline, second)
		}
	}

	if reqLimited {
		d.req = bucket{limit: a.cfg.Burst, tokens: l.req.TokensAt(now), rate: a.rate}
	}
	if l.tok != nil {
		d.tok = bucket{limit: a.cfg.TokenBurst, tokens: l.tok.TokensAt(now), rate: a.cfg.TokenRate}
	}
	// Keep both timelines the same length, so they line up second by second.
	for len(a.stats.Timeline) <= second {
		a.stats.Timeline = append(a.stats.Timeline, 0)
	}
	for len(a.stats.RefusedTimeline) <= second {
		a.stats.RefusedTimeline = append(a.stats.RefusedTimeline, 0)
	}
	return d
}

func bump(tl []int, i int) []int {
	for len(tl) <= i {
		tl = append(tl, 0)
	}
	tl[i]++
	return tl
}
