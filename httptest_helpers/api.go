package pacetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes the limits of a fake API. The zero Config is an API with
// no limits, which answers every request 200.
//
// Several limits may be set together (Rate, Window, TokenRate, MaxInFlight):
// a request is admitted only when every one of them has room.
type Config struct {
	// Rate is the request limit, in requests per second: the refill rate of
	// a token bucket that each request takes one token from. Zero or less
	// means no request limit.
	Rate float64
	// Burst is the size of the request bucket, which starts full.
	// Zero means one second's worth of Rate, at least 1.
	Burst int

	// Window, when positive, adds a window quota: at most Quota requests
	// per Window. A fixed window counts requests in consecutive periods of
	// Window from the API's creation, and a refusal's Retry-After runs to
	// the end of the period. A sliding window (Sliding) admits a request if
	// fewer than Quota were admitted during the Window before it, and a
	// refusal's Retry-After runs until the oldest of them leaves. A Quota of
	// zero refuses every request.
	Window  time.Duration
	Quota   int
	Sliding bool

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

	// MaxInFlight, when positive, caps the requests being served at once,
	// as DeepSeek does: while MaxInFlight accepted requests are still being
	// answered, another is refused with a 429 that carries no hint at all
	// (no Retry-After, no rate-limit headers), since the server cannot know
	// when one will end.
	MaxInFlight int

	// Models gives the named models limits of their own, as OpenAI,
	// Anthropic and xAI limit each model separately. A request names its
	// model in its JSON body's "model" field or in a Gemini-style path
	// (/v1beta/models/{model}:generateContent). When Models is not empty
	// every model has buckets of its own: those of Models[model] if it is
	// listed, else the Config's own limits.
	Models map[string]Limits

	// Schedule changes the Config's own limits at given times after the
	// API was created; see Change. SetRate changes them now.
	Schedule []Change

	// Penalty, when positive, suspends a client that exceeds a limit: from
	// that refusal on it is refused everything for Penalty, each 429's
	// Retry-After saying what is left of it. With PenaltyExtends, every
	// request during the suspension starts it again.
	Penalty        time.Duration
	PenaltyExtends bool

	// RetryAfter is how refusals announce their wait; the zero value sends
	// Retry-After in whole seconds, rounded up.
	RetryAfter RetryAfter
	// Dialect selects the rate-limit headers sent on every answer.
	Dialect Dialect
	// PerKey gives each credential (Authorization or x-api-key header) its
	// own buckets; otherwise all requests share one set.
	PerKey bool

	// Latency is the service time of an accepted request. The wait ends
	// early, with no answer, if the request's context ends.
	Latency time.Duration
	// LatencyJitter adds to each service time a uniform random part of up
	// to LatencyJitter, drawn from Seed.
	LatencyJitter time.Duration
	// Overload is the fraction of admitted requests answered as an
	// overloaded server does, alternately 503 and 529, instead of 200.
	// Which ones is random but fixed by Seed. They still use up quota.
	Overload float64
	// OverloadBursts overload the server for spells of time instead: every
	// request in a spell is refused. See OverloadBursts.
	OverloadBursts OverloadBursts
	// Seed seeds the choice of overloaded requests and the latency jitter.
	Seed uint64
	// ResponseBody is the body of a 200. Empty means a small JSON object.
	ResponseBody string
}

// limits returns the Config's own limits.
func (c Config) limits() Limits {
	return Limits{
		Rate: c.Rate, Burst: c.Burst,
		Window: c.Window, Quota: c.Quota, Sliding: c.Sliding,
		TokenRate: c.TokenRate, TokenBurst: c.TokenBurst,
		MaxInFlight: c.MaxInFlight,
	}
}

// Stats counts what an API has done since it was created.
type Stats struct {
	Requests        int // every request, answered or not
	Accepted        int // admitted by the limits and answered 200
	Refused         int // answered 429
	Overloaded      int // answered 503 or 529, or a burst's status
	TooLarge        int // answered 413: cost above TokenBurst
	PeakConcurrency int // most requests in the handler at once
	// PeakInFlight is the most accepted requests being served at once
	// under one set of limits: what MaxInFlight caps.
	PeakInFlight int
	// Timeline[i] counts the requests accepted during second i since the
	// API was created; RefusedTimeline likewise counts refusals. Both are
	// as long as the last second anything happened in.
	Timeline        []int
	RefusedTimeline []int
	// Keys counts by credential, when Config.PerKey is set; Models counts
	// by model, when Config.Models is not empty. Nil otherwise.
	Keys   map[string]Counts
	Models map[string]Counts
}

// Counts are the statistics of one credential or one model.
type Counts struct {
	Requests, Accepted, Refused, Overloaded int
	PeakInFlight                            int
}

// An Answer is what an API did with one request, in the order it decided.
type Answer struct {
	Time  time.Time // when the request arrived
	Key   string    // its credential, when Config.PerKey
	Model string    // its model, when Config.Models is not empty
	Cost  int       // its cost in tokens
	// Status is the answer's status code.
	Status int
	// RetryAfter is the wait the answer announced, as a client reads it
	// (whole seconds, milliseconds or a date less Date); zero when none.
	RetryAfter time.Duration
	// Service is the service time of an accepted request.
	Service time.Duration
	// Done is when an accepted request's answer ended; zero while it is
	// served, and for other answers, which take no time.
	Done time.Time
	// Abandoned means the client went away before the answer ended.
	Abandoned bool

	seq, doneSeq int64 // order of the decision and of the release
}

// API is a fake rate-limited API. Each request is checked against the limits
// of its Config: a token bucket of requests (Rate and Burst), a fixed or
// sliding window quota (Window and Quota), a token bucket of tokens
// (TokenRate and TokenBurst) and a cap on requests in flight (MaxInFlight),
// per credential (PerKey) and per model (Models). It is admitted only if all
// of them have room, and then counts against each, so a request refused on
// one limit uses none of the others. Limits may change on a Schedule, the
// server may be overloaded in spells (OverloadBursts), and a client that
// exceeds a limit may be suspended (Penalty).
//
// A refusal is a 429 with a JSON error body, the rate-limit headers of the
// Dialect and a wait in the RetryAfter format (Retry-After in whole seconds,
// rounded up, by default); a refusal for concurrency carries neither.
//
// The rules read time.Now at each request and start no goroutine of their
// own, so under testing/synctest with Transport the answers are exactly
// reproducible, and the same over a real socket. Create an API with NewAPI;
// it is safe for concurrent use.
type API struct {
	s   server
	cfg Config

	mu  sync.Mutex
	adm *admission
}

// NewAPI returns a fake API with the given limits. Close it when done.
func NewAPI(cfg Config) *API {
	if cfg.ResponseBody == "" {
		cfg.ResponseBody = `{"id":"pacetest","object":"response","status":"ok"}`
	}
	a := &API{cfg: cfg, adm: newAdmission(cfg, time.Now())}
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

// Start returns the time the API was created, from which Schedule,
// OverloadBursts and the timelines count.
func (a *API) Start() time.Time { return a.adm.start }

// SetRate changes the request rate of the Config's own limits from now on,
// as a vendor lowering a limit under load does; tokens already in a bucket
// stay. It takes the same values as Config.Rate. Models keep their rates.
func (a *API) SetRate(r float64) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adm.setRate(now, r)
}

// Stats returns a snapshot of the API's counters.
func (a *API) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.adm.snapshot()
}

// Answers returns every answer so far, in the order they were decided.
func (a *API) Answers() []Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.adm.answers)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := ""
	if a.cfg.PerKey {
		key = r.Header.Get("Authorization")
		if key == "" {
			key = r.Header.Get("X-Api-Key")
		}
	}
	model := ""
	if len(a.cfg.Models) > 0 {
		model = modelOf(r.URL.Path, body)
	}

	a.mu.Lock()
	a.adm.inHandler++
	a.adm.stats.PeakConcurrency = max(a.adm.stats.PeakConcurrency, a.adm.inHandler)
	now := time.Now()
	d := a.adm.decide(now, key, model, a.adm.cfg.Cost(r, body))
	a.mu.Unlock()
	abandoned := true
	defer func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.adm.inHandler--
		if d.verdict == accept {
			a.adm.release(d, time.Now(), abandoned)
		}
	}()

	h := w.Header()
	for k, v := range d.header {
		h[k] = v
	}
	announced := h.Get("Retry-After")
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		announced = ms + "ms"
	} else if _, err := strconv.Atoi(announced); err == nil {
		announced += "s"
	}
	switch d.verdict {
	case refuse:
		writeError(w, d.status, "rate_limit_error", d.errorMessage(announced))
	case tooLarge:
		writeError(w, d.status, "request_too_large", "request costs more tokens than the limit of "+strconv.Itoa(d.set.lim.TokenBurst))
	case overload:
		writeError(w, d.status, "overloaded_error", "overloaded")
	case accept:
		if !sleep(r.Context(), d.service) {
			return
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, a.cfg.ResponseBody)
	}
	abandoned = r.Context().Err() != nil
}

// modelOf returns the model a request names: its JSON body's "model" field,
// else the {model} of a path like /v1beta/models/{model}:generateContent.
func modelOf(path string, body []byte) string {
	if bytes.Contains(body, []byte(`"model"`)) {
		var v struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(body, &v) == nil && v.Model != "" {
			return v.Model
		}
	}
	_, rest, ok := strings.Cut(path, "/models/")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
