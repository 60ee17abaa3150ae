package pacetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// A Scenario is one kind of server and the work clients must get through
// it: a Config for the fake API, and streams of requests sent by one or more
// independent clients that share one credential. Scenarios lists the
// project's matrix; Runner.Run drives clients through one; Bound says how
// fast any client could have done it.
type Scenario struct {
	Name        string
	Description string
	// Server is the fake API's configuration.
	Server Config
	// Clients is the number of independent clients, each built by the
	// runner's caller and sharing nothing but the credential; zero means 1.
	Clients int
	// Streams are the work. They run at the same time, each from its Start.
	Streams []Stream
	// Stated marks a scenario in which the client is meant to be told the
	// server's request limit (Server.Rate and Server.Burst): the figures of
	// a client that learns it instead answer another question.
	Stated bool
}

// A Stream is a batch of requests sent by one client, in a closed loop
// (Workers each send a request, wait for its end, and send the next) or in
// an open loop (requests arrive at Arrivals per second whatever happens to
// the earlier ones).
type Stream struct {
	Name string
	// Client is the index of the client that sends the stream, from 0.
	Client int
	// Model, if set, is named in each request's JSON body.
	Model string
	// Requests is the number of requests in the stream.
	Requests int
	// Workers, in a closed loop, is how many requests are out at once.
	Workers int
	// Arrivals, when Workers is zero, is the open loop's rate of requests
	// per second: evenly spaced, or a Poisson process drawn from Seed.
	Arrivals float64
	Poisson  bool
	Seed     uint64
	// Start is when the stream begins, after the API was created.
	Start time.Duration
	// Deadline, if positive, is each request's deadline from when it is
	// sent: a caller that will not wait longer.
	Deadline time.Duration
	// Costs, if set, gives each request's cost in tokens under the default
	// Cost (a quarter of the body's length); it must have Requests entries.
	Costs []int
}

// scenarioKey is the credential every request of a scenario carries, in its
// Authorization header.
const scenarioKey = "Bearer pacetest-key"

// memoryURL is the URL of a scenario's server when it runs in memory.
const memoryURL = "http://pacetest.invalid"

// ErrScenario is wrapped by the errors of a scenario that cannot run.
var ErrScenario = errors.New("pacetest: invalid scenario")

// Validate reports what makes the scenario impossible to run, if anything.
func (s Scenario) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrScenario, s.Name, fmt.Sprintf(format, args...))
	}
	if len(s.Streams) == 0 {
		return bad("no streams")
	}
	for _, st := range s.Streams {
		switch {
		case st.Requests < 1:
			return bad("stream %q has %d requests", st.Name, st.Requests)
		case st.Workers < 0 || (st.Workers == 0 && !(st.Arrivals > 0)):
			return bad("stream %q needs workers or a positive arrival rate", st.Name)
		case st.Client < 0 || st.Client >= s.clients():
			return bad("stream %q is sent by client %d of %d", st.Name, st.Client, s.clients())
		case st.Costs != nil && len(st.Costs) != st.Requests:
			return bad("stream %q has %d costs for %d requests", st.Name, len(st.Costs), st.Requests)
		case st.Start < 0 || st.Deadline < 0:
			return bad("stream %q has a negative start or deadline", st.Name)
		}
	}
	return nil
}

func (s Scenario) clients() int { return max(1, s.Clients) }

// Requests is the number of requests in all streams.
func (s Scenario) Requests() int {
	n := 0
	for _, st := range s.Streams {
		n += st.Requests
	}
	return n
}

// arrivals returns the offsets from the stream's Start at which an open
// loop's requests arrive.
func (st Stream) arrivals() []time.Duration {
	at := make([]time.Duration, st.Requests)
	rng := rand.New(rand.NewPCG(st.Seed, 0x9e3779b97f4a7c15))
	var t float64
	for i := range at {
		at[i] = time.Duration(t * float64(time.Second))
		if st.Poisson {
			t += rng.ExpFloat64() / st.Arrivals
		} else {
			t += 1 / st.Arrivals
		}
	}
	return at
}

// body returns the JSON body of request i of the stream, or nil for a
// bodyless GET.
func (st Stream) body(i int) []byte {
	if st.Model == "" && st.Costs == nil {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`{`)
	if st.Model != "" {
		fmt.Fprintf(&b, `"model":%q,`, st.Model)
	}
	b.WriteString(`"prompt":"`)
	if st.Costs != nil {
		// The default Cost is a quarter of the length.
		b.WriteString(strings.Repeat("x", max(0, st.Costs[i]*4-b.Len()-2)))
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// path is the path of the stream's requests: a POST of a JSON body to
// /v1/messages when they have a model or a cost, else a GET of /v1/items.
func (st Stream) path() string {
	if st.Model == "" && st.Costs == nil {
		return "/v1/items"
	}
	return "/v1/messages"
}

// newRequest builds request i of the stream against base, without a context.
func (st Stream) newRequest(base string, i int) *http.Request {
	var req *http.Request
	if b := st.body(i); b != nil {
		req, _ = http.NewRequest(http.MethodPost, base+st.path(), bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(http.MethodGet, base+st.path(), nil)
	}
	req.Header.Set("Authorization", scenarioKey)
	return req
}

// LimitAt is the server's nominal request limit at offset t, in requests
// per second: the least of its rate, its window's quota per window and, for
// a concurrency cap, the cap over the service time; the sum over the models
// the streams name when models have limits of their own; zero during an
// overload burst; +Inf when nothing limits requests.
func (s Scenario) LimitAt(t time.Duration) float64 {
	cfg := s.Server
	if _, in := cfg.OverloadBursts.remaining(t); in {
		return 0
	}
	own := cfg.limits()
	for _, c := range cfg.Schedule {
		if c.At <= t {
			if c.Rate != 0 {
				own.Rate = c.Rate
			}
			if c.Quota != 0 {
				own.Quota = c.Quota
			}
			if c.MaxInFlight != 0 {
				own.MaxInFlight = c.MaxInFlight
			}
		}
	}
	if len(cfg.Models) == 0 {
		return rateOf(own, cfg.Latency)
	}
	seen := map[string]bool{}
	var sum float64
	for _, st := range s.Streams {
		if seen[st.Model] {
			continue
		}
		seen[st.Model] = true
		l, ok := cfg.Models[st.Model]
		if !ok || st.Model == "" {
			l = own
		}
		sum += rateOf(l, cfg.Latency)
	}
	return sum
}

// rateOf is the request rate a set of limits allows in the long run.
func rateOf(l Limits, latency time.Duration) float64 {
	r := inf
	if l.Rate > 0 {
		r = l.Rate
	}
	if l.Window > 0 {
		r = min(r, float64(l.Quota)/l.Window.Seconds())
	}
	if l.MaxInFlight > 0 && latency > 0 {
		r = min(r, float64(l.MaxInFlight)/latency.Seconds())
	}
	return r
}
