package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// params are the knobs a user sets with flags; a scenario turns them into a
// fake API's configuration and a workload.
type params struct {
	N          int
	Workers    int
	Rate       float64 // requests per second
	Burst      int
	TokensPerM float64 // tokens per minute, for the tokens scenario
	Dialect    pacetest.Dialect
	Latency    time.Duration
	Seed       uint64
	CutFactor  float64 // a contender is stopped at CutFactor times the bound
}

// A rateChange sets the fake API's request rate At after a run starts.
type rateChange struct {
	At   time.Duration
	Rate float64
}

// A scenario is one shape of rate limiting. It is fixed before any
// contender runs, so every contender faces the same server and workload.
type scenario struct {
	Name        string
	Description string
	Config      pacetest.Config
	Clients     int          // independent clients sharing the key; 1 or more
	Costs       []int        // token cost of each request; nil: no body
	Schedule    []rateChange // request-rate changes during a run
	Bound       time.Duration
	BoundNote   string // how Bound was computed, when not plainly (N-burst)/rate
}

// scenarioNames lists the scenarios in the order -scenario all runs them.
var scenarioNames = []string{"steady", "retry-after", "tokens", "drop", "shared", "overload"}

// newScenario builds the named scenario from p.
func newScenario(name string, p params) (scenario, error) {
	s := scenario{
		Name:    name,
		Clients: 1,
		Config: pacetest.Config{
			Rate:    p.Rate,
			Burst:   p.Burst,
			Dialect: p.Dialect,
			Latency: p.Latency,
			Seed:    p.Seed,
		},
	}
	need := float64(p.N) // admissions the server must grant
	switch name {
	case "steady":
		s.Description = fmt.Sprintf("steady limit of %g req/s, burst %d, %s rate-limit headers", p.Rate, p.Burst, p.Dialect)
	case "retry-after":
		s.Config.Dialect = pacetest.None
		s.Description = fmt.Sprintf("steady limit of %g req/s, burst %d, 429s carry only Retry-After", p.Rate, p.Burst)
	case "tokens":
		rng := rand.New(rand.NewPCG(p.Seed, 1))
		s.Costs = make([]int, p.N)
		for i := range s.Costs {
			s.Costs[i] = 20 + rng.IntN(161) // 20..180 tokens, mean 100
		}
		s.Config.TokenRate = p.TokensPerM / 60
		s.Config.TokenBurst = max(1, int(s.Config.TokenRate))
		s.Description = fmt.Sprintf("%g tokens/min (bucket of one second's worth) and %g req/s, requests cost 20-180 tokens", p.TokensPerM, p.Rate)
	case "drop":
		nominal := physicalBound(need, float64(p.Burst), []rateChange{{0, p.Rate}})
		down, up := nominal/4, nominal*3/4
		s.Schedule = []rateChange{{down, p.Rate / 2}, {up, p.Rate}}
		s.Description = fmt.Sprintf("%g req/s, halved from %.1fs to %.1fs of the run", p.Rate, down.Seconds(), up.Seconds())
	case "shared":
		s.Clients = 4
		s.Config.PerKey = true
		s.Description = fmt.Sprintf("%d independent clients share one key limited to %g req/s (each told the full rate)", s.Clients, p.Rate)
	case "overload":
		s.Config.Overload = 0.2
		need = float64(p.N) / (1 - s.Config.Overload)
		s.BoundNote = "expects N/(1-0.2) admissions: overloaded answers use quota too"
		s.Description = fmt.Sprintf("%g req/s; 20%% of admitted requests answered 503 or 529", p.Rate)
	default:
		return scenario{}, fmt.Errorf("unknown scenario %q (want one of %s, or all)", name, strings.Join(scenarioNames, ", "))
	}
	rates := append([]rateChange{{0, p.Rate}}, s.Schedule...)
	s.Bound = physicalBound(need, float64(p.Burst), rates)
	if s.Costs != nil {
		total := 0
		for _, c := range s.Costs {
			total += c
		}
		tb := physicalBound(float64(total), float64(s.Config.TokenBurst), []rateChange{{0, s.Config.TokenRate}})
		if tb > s.Bound {
			s.Bound = tb
			s.BoundNote = "token limit binds: (total cost - token burst)/token rate"
		}
	}
	return s, nil
}

// physicalBound is the least time in which a token bucket of size burst,
// full at the start and refilled at the piecewise-constant rates (sorted by
// At, the first at 0), can grant need units. No client can finish sooner.
// For a constant rate it is (need - burst)/rate.
func physicalBound(need, burst float64, rates []rateChange) time.Duration {
	left := need - burst
	if left <= 0 {
		return 0
	}
	rates = slices.Clone(rates)
	slices.SortFunc(rates, func(a, b rateChange) int { return int(a.At - b.At) })
	var t float64
	for i, rc := range rates {
		if rc.Rate <= 0 {
			continue
		}
		end := math.Inf(1)
		if i+1 < len(rates) {
			end = rates[i+1].At.Seconds()
		}
		start := max(t, rc.At.Seconds())
		if got := (end - start) * rc.Rate; got >= left {
			return seconds(start + left/rc.Rate)
		} else {
			left -= got
		}
		t = end
	}
	return time.Duration(math.MaxInt64)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// rateAt is the server's request rate at offset t under the schedule.
func (s scenario) rateAt(t time.Duration) float64 {
	r := s.Config.Rate
	for _, rc := range s.Schedule {
		if t >= rc.At {
			r = rc.Rate
		}
	}
	return r
}
