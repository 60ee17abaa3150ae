package pacehttp_test

import (
	"flag"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"text/tabwriter"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

var (
	scenarioVerbose = flag.Bool("scenario.verbose", false, "TestScenarios: log every figure of every run, timelines included")
	// Goroutines that are ready at one instant of virtual time run in no
	// fixed order, so figures vary a little from run to run where many
	// requests contend; -scenario.runs holds every run to the goals.
	scenarioRuns     = flag.Int("scenario.runs", 1, "TestScenarios: run each scenario this many times, each held to the goals")
	scenarioNetwork  = flag.Duration("scenario.network", time.Millisecond, "TestScenarios: the round trip of the network condition")
	scenarioMarkdown = flag.Bool("scenario.markdown", false, "TestScenarios: log the tables as Markdown, as docs/pacing.md has them")
	scenarioScatter  = flag.Duration("scenario.scatter", 200*time.Microsecond, "TestScenarios: how late, at most, requests of the network condition reach their client")
)

// A condition is how a scenario's clients reach its server in memory.
type condition struct {
	name   string
	runner func() pacetest.Runner
}

// Every scenario runs under both conditions. Instantly, a burst leaves at
// one instant and every answer is heard the moment it is made; over the
// network (by default a loopback's: a 1ms round trip, requests reaching
// their client up to 200µs apart) the requests of a burst leave apart,
// reach the server in any order, and a refusal is heard only after more
// requests have left. A client tuned to either alone fails the other.
var conditions = []condition{
	{"instant", func() pacetest.Runner { return pacetest.Runner{} }},
	{"network", func() pacetest.Runner {
		return pacetest.Runner{Network: *scenarioNetwork, Scatter: *scenarioScatter}
	}},
}

// goal is what issue 11 asks of pacehttp on one scenario. Zero fields ask
// nothing.
type goal struct {
	// ratio caps the elapsed time over the physical bound from a cold
	// start, and ratioAfter the time from the first refusal over the bound
	// of the work left then. ratioOf lists where they apply: "" is the
	// whole run, a name is that stream alone (its own ratio, held to
	// ratioAfter if the stream starts after the first refusal, else ratio).
	ratio, ratioAfter float64
	ratioOf           []string
	// refused caps the 429s per request.
	refused float64
	// noFailures: no request of a stream without a deadline fails that the
	// ideal client got through. (Callers with short deadlines fail
	// requests by their own choice.)
	noFailures bool
	// addedP50 caps what the client adds to the median latency.
	addedP50 time.Duration
	// fall caps the time to settle after the limit falls; rise the time to
	// reach 90% of a raised limit.
	fall, rise time.Duration
	// aggregate is the least share of the limit several clients on one key
	// get from 3s on, sharedRefused the most 429s among their attempts.
	aggregate, sharedRefused float64
	// polite caps the attempts per Retry-After window after a refusal.
	polite int
	// naive: never worse than the naive loop in time or in 429s. Time is
	// compared only when the naive loop got at least one request and at
	// least as many as pacehttp through: one that gives up early has not
	// done the same work, and when nothing gets through there is no time
	// of completion to compare.
	naive bool
}

// base is the goal of issue 11 for every kind of server: within 1.15x of
// the bound once the first refusal has been seen and 1.3x from a cold
// start, at most 3% 429s, no request failed, never worse than the naive loop.
var base = goal{ratio: 1.3, ratioAfter: 1.15, ratioOf: []string{""}, refused: 0.03, noFailures: true, naive: true}

// with returns the base goal changed by f.
func with(f func(*goal)) goal {
	g := base
	g.ratioOf = slices.Clone(base.ratioOf)
	f(&g)
	return g
}

// goals are the goals per scenario of pacetest.Scenarios; the test fails if
// the two lists differ.
var goals = map[string]goal{
	"retry-after":     base,
	"article":         base,
	"article-openai":  base,
	"stated-rate":     base,
	"anthropic":       base,
	"retry-after-ms":  base,
	"http-date":       base,
	"no-hint":         base,
	"small-burst":     base,
	"jitter":          base,
	"limit-falls":     with(func(g *goal) { g.fall = 2 * time.Second }),
	"limit-rises":     with(func(g *goal) { g.rise = 5 * time.Second }),
	"fixed-window":    base,
	"sliding-window":  base,
	"concurrency-cap": base,
	"overload-bursts": base,
	"overload-random": base,
	"penalty-box":     base,
	"tokens":          base,
	// Several clients on one key: the issue's own figures for sharing
	// (aggregate >= 85%, <= 5% 429s after the first 3s) replace the 3% of
	// a lone client, whose cold start is not shared with three others.
	"shared-key":        with(func(g *goal) { g.refused, g.aggregate, g.sharedRefused = 0, 0.85, 0.05 }),
	"shared-key-openai": with(func(g *goal) { g.refused, g.aggregate, g.sharedRefused = 0, 0.85, 0.05 }),
	// The fast model must not be slowed by the slow one.
	"per-model": with(func(g *goal) { g.ratioOf = []string{"", "fast"} }),
	"open-loop": with(func(g *goal) { g.addedP50 = 500 * time.Microsecond }),
	// Nothing gets through: no time to compare, every answer a 429.
	"llm-per-minute": base,
	"refuse-all":     {polite: 1, naive: true},
	// The late caller must not be told to wait for a queue that has left.
	"cancelled-waiters": with(func(g *goal) { g.ratioOf = []string{"late"}; g.refused = 0 }),
	// A rush of impatient callers must not lock the partition up.
	"short-deadlines": with(func(g *goal) { g.ratioOf = []string{"after"}; g.refused = 0 }),
}

// A shortfall is a scenario on which pacehttp does not meet its goal: why,
// and the figures it is held to instead, which are what it measured with a
// margin. A run that misses the goal but meets the shortfall's figures is
// logged, not failed; one that misses those too fails, as a regression.
// docs/pacing.md gives each shortfall's figures and argument.
type shortfall struct {
	why  string
	held goal
}

// shortfalls are the scenarios of goals that pacehttp falls short of.
var shortfalls = map[string]shortfall{
	// The first 429 suspends the key for 2s, so a client that is refused
	// at all takes at least 5.81s, 1.49x; one refusal does not tell the
	// rate, and a client refused twice takes at least 7.71s, 1.97x, and
	// 1.33x from its first refusal (docs/pacing.md, "Penalty box").
	// pacehttp is refused twice: 2.13x, 1.44x after the first refusal.
	"penalty-box": {
		why:  "no client that learns the limit can meet it (docs/pacing.md)",
		held: with(func(g *goal) { g.ratio, g.ratioAfter = 2.2, 1.5 }),
	},
}

// check returns what r misses of g; naive is the naive loop's run.
func (g goal) check(s pacetest.Scenario, r, naive *pacetest.Result) []string {
	var miss []string
	fail := func(format string, args ...any) { miss = append(miss, fmt.Sprintf(format, args...)) }
	for _, where := range g.ratioOf {
		if where == "" {
			if r.Bound == pacetest.Never {
				fail("no bound to compare with")
				continue
			}
			if g.ratio > 0 && r.Ratio > g.ratio {
				fail("took %.2fx the bound, want <= %.2fx", r.Ratio, g.ratio)
			}
			if g.ratioAfter > 0 && r.RatioAfterRefusal > g.ratioAfter {
				fail("took %.2fx the bound from the first refusal on, want <= %.2fx", r.RatioAfterRefusal, g.ratioAfter)
			}
			continue
		}
		i := slices.IndexFunc(s.Streams, func(st pacetest.Stream) bool { return st.Name == where })
		if i < 0 {
			fail("no stream %q", where)
			continue
		}
		sr, limit := r.Streams[i], g.ratio
		if r.FirstRefusal >= 0 && r.FirstRefusal <= s.Streams[i].Start {
			limit = g.ratioAfter
		}
		if sr.Ratio > limit {
			fail("stream %s took %.2fx its bound, want <= %.2fx", where, sr.Ratio, limit)
		}
	}
	if g.refused > 0 && r.RefusedPerRequest > g.refused {
		fail("%.1f%% 429s per request, want <= %.0f%%", 100*r.RefusedPerRequest, 100*g.refused)
	}
	if g.noFailures {
		for i, sr := range r.Streams {
			if s.Streams[i].Deadline == 0 && sr.Failed > sr.BoundFailed {
				fail("stream %s: %d requests failed, want %d", sr.Name, sr.Failed, sr.BoundFailed)
			}
		}
	}
	if g.addedP50 > 0 && r.Failed < r.Requests && r.AddedP50 > g.addedP50 {
		fail("added %v at p50, want <= %v", r.AddedP50, g.addedP50)
	}
	measured := false
	for _, c := range r.Changes {
		want := g.rise
		if c.To < c.From {
			want = g.fall
		}
		if want == 0 {
			continue
		}
		measured = true
		if !c.Reached || c.Settled > want {
			fail("limit %g -> %g/s at %v: %s, want within %v", c.From, c.To, c.At, settled(c), want)
		}
	}
	if (g.fall > 0 || g.rise > 0) && !measured {
		fail("no change of the limit measured")
	}
	if g.aggregate > 0 {
		switch sh := r.Sharing; {
		case sh == nil:
			fail("no span after 3s in which every client was busy")
		default:
			if sh.Aggregate < g.aggregate {
				fail("clients on one key got %.0f%% of the limit after 3s, want >= %.0f%%", 100*sh.Aggregate, 100*g.aggregate)
			}
			if sh.RefusedShare > g.sharedRefused {
				fail("clients on one key saw %.1f%% 429s after 3s, want <= %.0f%%", 100*sh.RefusedShare, 100*g.sharedRefused)
			}
		}
	}
	if g.polite > 0 {
		if r.FirstRefusal < 0 {
			fail("no refusal: politeness not measured")
		}
		if r.MostPerRetryAfter > g.polite {
			fail("%d attempts within one Retry-After, want <= %d", r.MostPerRetryAfter, g.polite)
		}
	}
	if g.naive {
		if r.Refused > naive.Refused {
			fail("%d 429s, the naive loop %d", r.Refused, naive.Refused)
		}
		if naive.Failed <= r.Failed && naive.Failed < naive.Requests && r.Elapsed > naive.Elapsed {
			fail("took %v, the naive loop %v", round(r.Elapsed), round(naive.Elapsed))
		}
	}
	return miss
}

func settled(c pacetest.ChangeResult) string {
	if !c.Reached {
		return fmt.Sprintf("not settled in the %v left", round(c.Settled))
	}
	return fmt.Sprintf("settled after %v", round(c.Settled))
}

// TestScenarios runs pacehttp.New with default options (WithRate where the
// scenario states the limit) and the naive retry loop through every
// scenario of pacetest.Scenarios, in virtual time, and holds pacehttp to the
// goals of issue 11. The table of figures (of the first run) is logged, and
// shown with -v; -scenario.verbose logs every figure; -scenario.runs repeats
// every row, holds each run to the goals, and logs how many met them with
// the median and worst figures.
//
//	go test -run TestScenarios -v .
//	go test -run 'TestScenarios/limit-falls/network' -v . -args -scenario.verbose
//	go test -run TestScenarios -v . -args -scenario.runs=10
func TestScenarios(t *testing.T) {
	scenarios := pacetest.Scenarios()
	var names []string
	for _, s := range scenarios {
		names = append(names, s.Name)
		if _, ok := goals[s.Name]; !ok {
			t.Errorf("scenario %q has no goal", s.Name)
		}
	}
	for name := range goals {
		if !slices.Contains(names, name) {
			t.Errorf("goal for %q, which is no scenario", name)
		}
	}
	for name := range shortfalls {
		if _, ok := goals[name]; !ok {
			t.Errorf("shortfall of %q, which has no goal", name)
		}
	}

	var mu sync.Mutex
	rows := map[string][2]*pacetest.Result{}
	tallies := map[string]*tally{}
	t.Cleanup(func() {
		var b strings.Builder
		writeScenarioTable(&b, scenarios, rows)
		if *scenarioRuns > 1 {
			b.WriteString("\n")
			writeTallies(&b, scenarios, tallies)
		}
		t.Log("\n" + b.String())
	})
	for _, s := range scenarios {
		for _, c := range conditions {
			t.Run(s.Name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				for run := range max(1, *scenarioRuns) {
					pace := runScenario(t, c.runner(), s, pacehttpClient(s))
					naive := runScenario(t, c.runner(), s, func(base http.RoundTripper) http.RoundTripper {
						return pacetest.NaiveRetry(base, 5)
					})
					misses := goals[s.Name].check(s, pace, naive)
					met := len(misses) == 0
					if sf, ok := shortfalls[s.Name]; ok && !met {
						t.Logf("%s, %s (run %d): short of the goal, %s: %s", s.Name, c.name, run+1, sf.why, strings.Join(misses, "; "))
						misses = sf.held.check(s, pace, naive)
					}
					mu.Lock()
					if run == 0 {
						rows[s.Name+"/"+c.name] = [2]*pacetest.Result{pace, naive}
						tallies[s.Name+"/"+c.name] = &tally{}
					}
					tallies[s.Name+"/"+c.name].add(pace, met)
					mu.Unlock()
					if *scenarioVerbose {
						t.Logf("%s, %s (run %d): %s\npacehttp: %s\nnaive:    %s", s.Name, c.name, run+1, s.Description, verbose(pace), verbose(naive))
					}
					for _, m := range misses {
						t.Errorf("%s, %s (run %d): %s", s.Name, c.name, run+1, m)
					}
				}
			})
		}
	}
}

// pacehttpClient is pacehttp.New with default options, told the rate where
// the scenario states it.
func pacehttpClient(s pacetest.Scenario) pacetest.NewClient {
	return func(base http.RoundTripper) http.RoundTripper {
		if s.Stated {
			return pacehttp.New(base, pacehttp.WithRate(s.Server.Rate, s.Server.Burst))
		}
		return pacehttp.New(base)
	}
}

// runScenario runs s with r in a synctest bubble.
func runScenario(t *testing.T, r pacetest.Runner, s pacetest.Scenario, client pacetest.NewClient) *pacetest.Result {
	t.Helper()
	var res *pacetest.Result
	synctest.Test(t, func(t *testing.T) {
		var err error
		if res, err = r.Run(s, client); err != nil {
			t.Fatal(err)
		}
	})
	return res
}

// A tally sums up a row's runs: figures vary from run to run where many
// requests contend at one instant (see -scenario.runs).
type tally struct {
	passed                     int
	ratios, afters, refusedPct []float64
	worstFailed                int
}

func (ty *tally) add(r *pacetest.Result, passed bool) {
	if passed {
		ty.passed++
	}
	ty.ratios = append(ty.ratios, r.Ratio)
	ty.afters = append(ty.afters, r.RatioAfterRefusal)
	ty.refusedPct = append(ty.refusedPct, 100*r.RefusedPerRequest)
	ty.worstFailed = max(ty.worstFailed, r.Failed-r.BoundFailed)
}

// writeTallies writes one line per row: the runs that met every goal, and
// the median and worst of the main figures.
func writeTallies(w *strings.Builder, scenarios []pacetest.Scenario, tallies map[string]*tally) {
	medianWorst := func(xs []float64) string {
		ys := slices.Sorted(slices.Values(xs))
		return fmt.Sprintf("%.2f (%.2f)", ys[len(ys)/2], ys[len(ys)-1])
	}
	tb := table{header: []string{"scenario", "clients reach it", "runs meeting every goal", "/bound, median (worst)", "after 1st 429", "% 429s", "most failed"}}
	all, rows := 0, 0
	for _, s := range scenarios {
		for _, c := range conditions {
			ty, ok := tallies[s.Name+"/"+c.name]
			if !ok {
				continue
			}
			rows++
			if ty.passed == len(ty.ratios) {
				all++
			}
			tb.add(s.Name, c.name, fmt.Sprintf("%d of %d", ty.passed, len(ty.ratios)),
				medianWorst(ty.ratios), medianWorst(ty.afters), medianWorst(ty.refusedPct), fmt.Sprint(ty.worstFailed))
		}
	}
	tb.write(w)
	fmt.Fprintf(w, "%d of %d rows met every goal in every run\n", all, rows)
}

// writeScenarioTable writes one line per scenario: pacehttp's figures, then
// the naive loop's.
func writeScenarioTable(w *strings.Builder, scenarios []pacetest.Scenario, rows map[string][2]*pacetest.Result) {
	tb := table{header: []string{"scenario", "clients reach it", "bound", "pacehttp", "/bound", "after 1st 429", "429s", "failed", "added p50", "other",
		"naive", "/bound", "429s", "failed"}}
	for _, s := range scenarios {
		for _, c := range conditions {
			rs, ok := rows[s.Name+"/"+c.name]
			if !ok {
				continue
			}
			p, n := rs[0], rs[1]
			tb.add(s.Name, c.name, dur(p.Bound), dur(p.Elapsed), ratioText(p.Ratio), ratioText(p.RatioAfterRefusal),
				fmt.Sprint(p.Refused), fmt.Sprint(p.Failed), fmt.Sprint(round(p.AddedP50)), other(s, p, n),
				dur(n.Elapsed), ratioText(n.Ratio), fmt.Sprint(n.Refused), fmt.Sprint(n.Failed))
		}
	}
	tb.write(w)
}

// A table is written aligned for a terminal, or as Markdown under
// -scenario.markdown.
type table struct {
	header []string
	rows   [][]string
}

func (tb *table) add(cells ...string) { tb.rows = append(tb.rows, cells) }

func (tb *table) write(w *strings.Builder) {
	if *scenarioMarkdown {
		line := func(cells []string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
		line(tb.header)
		line(slices.Repeat([]string{"---"}, len(tb.header)))
		for _, r := range tb.rows {
			line(r)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{tb.header}, tb.rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

// other holds the figures only some scenarios have; naive is the naive
// loop's run.
func other(s pacetest.Scenario, r, naive *pacetest.Result) string {
	var parts []string
	for _, c := range r.Changes {
		parts = append(parts, fmt.Sprintf("%g->%g/s %s", c.From, c.To, settled(c)))
	}
	if sh := r.Sharing; sh != nil {
		parts = append(parts, fmt.Sprintf("shared %.0f%% of limit, %.1f%% 429s", 100*sh.Aggregate, 100*sh.RefusedShare))
	}
	if len(s.Streams) > 1 {
		for _, st := range r.Streams {
			parts = append(parts, fmt.Sprintf("%s %s %s", st.Name, ratioText(st.Ratio), failedText(st)))
		}
	}
	if goals[s.Name].polite > 0 {
		parts = append(parts, fmt.Sprintf("at most %d attempt(s) per Retry-After (naive loop %d)", r.MostPerRetryAfter, naive.MostPerRetryAfter))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func failedText(st pacetest.StreamResult) string {
	if st.Failed == 0 {
		return "ok"
	}
	return fmt.Sprintf("%d failed", st.Failed)
}

func verbose(r *pacetest.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "elapsed %v (bound %v, %s), %d attempts, %d 429s, %d 503/529s, %d failed (%d cut, %d failed for the ideal client), first refusal %v, after it %s of %v, p50 %v p99 %v, added p50 %v p99 %v, %d per Retry-After, peak in flight %d",
		round(r.Elapsed), dur(r.Bound), ratioText(r.Ratio), r.Attempts, r.Refused, r.Overloaded, r.Failed, r.Cut, r.BoundFailed,
		round(r.FirstRefusal), ratioText(r.RatioAfterRefusal), dur(r.BoundAfterRefusal), round(r.P50), round(r.P99),
		round(r.AddedP50), round(r.AddedP99), r.MostPerRetryAfter, r.PeakInFlight)
	fmt.Fprintf(&b, "\n  accepted/s %v\n  429s/s     %v", r.AcceptedTimeline, r.RefusedTimeline)
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\n  %d failed: %s", f.Count, f.Example)
	}
	return b.String()
}

func ratioText(f float64) string {
	if f == 0 || math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f)
}

func dur(d time.Duration) string {
	if d == pacetest.Never {
		return "never"
	}
	return round(d).String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
