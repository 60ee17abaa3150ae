package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func TestWriteScenario(t *testing.T) {
	sr := scenarioReport{
		Name: "s", Bound: time.Second,
		Results: []contenderRun{
			{Contender: "a", Result: &pacetest.Result{Elapsed: 1500 * time.Millisecond, Ratio: 1.5, Refused: 3, Retries: 3, P50: 2 * time.Millisecond, P99: 40 * time.Microsecond}},
			{Contender: "b", Result: &pacetest.Result{
				Elapsed: 3 * time.Second, Bound: time.Second, Ratio: 3, Failed: 7, Cut: 5, Stop: 3 * time.Second, Stopped: true,
				Failures: []pacetest.Failure{{Example: `Get "http://127.0.0.1:4242/v1/items": giving up after 5 attempt(s)`, Count: 2}},
				Changes:  []pacetest.ChangeResult{{At: 2 * time.Second, From: 100, To: 50, Settled: 800 * time.Millisecond, Reached: true}},
			}},
		},
		Skipped: []skippedRun{{Contender: "c", Why: "not told"}},
	}
	var plain, md bytes.Buffer
	writeScenario(&plain, sr, false)
	writeScenario(&md, sr, true)
	for _, want := range []string{
		"1.50s", "1.50x", "7 (5 cut)", "40µs",
		`b: 2 of 2 failures: Get "http://127.0.0.1:4242/v1/items": giving up after 5 attempt(s)`,
		"b was stopped at 3.00s (3.0x the bound): its 5 unfinished requests count as failed.",
		"b: limit 100 -> 50/s at 2.00s: settled after 800ms",
		"c: not told",
	} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, plain.String())
		}
	}
	lines := strings.Split(md.String(), "\n")
	if lines[0] != "| contender | wall | wall/bound | after 1st refusal | 429s | 503/529s | retries | failed | p50 | p99 |" || lines[1] != "|---|---|---|---|---|---|---|---|---|---|" {
		t.Errorf("Markdown header:\n%s", md.String())
	}
}

func TestWriteSummary(t *testing.T) {
	srs := []scenarioReport{
		{Name: "x", Bound: time.Second, Results: []contenderRun{{Contender: "pacehttp", Result: &pacetest.Result{Ratio: 1.02, Refused: 1}}}},
		{Name: "y", Bound: 2 * time.Second, Results: []contenderRun{{Contender: "pacehttp", Result: &pacetest.Result{Ratio: 3, Failed: 9}}}},
	}
	var b bytes.Buffer
	writeSummary(&b, srs, []contender{{Name: "pacehttp"}, {Name: "seed article"}}, true)
	want := "| scenario | bound | pacehttp | seed article |\n|---|---|---|---|\n| x | 1.00s | 1.02x 1/0 | - |\n| y | 2.00s | 3.00x 0/9 | - |\n"
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}

// tiny is a scenario short enough to run in a test in real time.
var tiny = pacetest.Scenario{
	Name:        "tiny",
	Description: "a limit the batch never reaches",
	Server:      pacetest.Config{Rate: 10000, Burst: 1000, Latency: 5 * time.Millisecond},
	Streams:     []pacetest.Stream{{Name: "batch", Requests: 30, Workers: 4}},
}

// TestDemo runs every contender end to end over loopback on a tiny
// scenario, and checks the report and the JSON.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	o := options{parallel: 2, stopAt: 3, jsonPath: filepath.Join(dir, "r.json")}
	var out bytes.Buffer
	if err := demo(o, "pacedemo test", []pacetest.Scenario{tiny, tiny}, contenders, quiet{}, &out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 || len(rep.Scenarios[0].Results) != len(contenders) {
		t.Fatalf("report has %d scenarios, want 2 with %d results:\n%s", len(rep.Scenarios), len(contenders), b)
	}
	for _, r := range rep.Scenarios[0].Results {
		if r.Requests != 30 || r.Failed != 0 || r.Refused != 0 || r.Attempts != 30 || len(r.Timeline) == 0 {
			t.Errorf("%s: %d requests, %d failed, %d 429s, %d attempts, timeline %v; want 30, 0, 0, 30", r.Contender, r.Requests, r.Failed, r.Refused, r.Attempts, r.Timeline)
		}
	}
	for _, want := range []string{"pacehttp+rate", "bound: the least time", "p50, p99: from the caller's call", "== side by side"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// One naming style: snake_case keys throughout.
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) && !strings.Contains(k, "/") { // module paths key the versions
					t.Errorf("JSON key %q is not snake_case", k)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func TestPlot(t *testing.T) {
	dir := t.TempDir()
	s := pacetest.Scenario{Name: "drop", Server: pacetest.Config{Rate: 100, Schedule: []pacetest.Change{{At: time.Second, Rate: 50}}}}
	sr := scenarioReport{Name: s.Name, Description: "d", Bound: 2 * time.Second, scenario: s, Results: []contenderRun{
		{Contender: "pacehttp", Result: &pacetest.Result{Elapsed: 2 * time.Second}, Timeline: []float64{100, 100, 100, 100, 50, 50, 50, 50}, TimelineBin: binWidth},
		{Contender: "seed article", Result: &pacetest.Result{Elapsed: 3 * time.Second, Failed: 2}, Timeline: []float64{80, 0, 0, 0, 40}, TimelineBin: binWidth},
	}}
	path, err := plotScenario(dir, sr)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || path != filepath.Join(dir, "drop.png") || fi.Size() < 1000 {
		t.Errorf("plot %s: %v", path, err)
	}
}

func TestRunFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"-scenario", "nope"}, `unknown scenario "nope"; the scenarios are "retry-after", "article"`},
		{[]string{"-contenders", "pacehttp,nope"}, `unknown contender "nope"; the contenders are "no retry", "seed article", "go-retryablehttp", "failsafe-go", "pacehttp", "pacehttp+rate"`},
		{[]string{"-parallel", "0"}, "-parallel must be at least 1"},
		{[]string{"-cut", "0"}, "-cut positive"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
	} {
		err := run(tt.args, new(bytes.Buffer), new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tt.args, err, tt.want)
		}
	}
	var usage bytes.Buffer
	if err := run([]string{"-h"}, new(bytes.Buffer), &usage); !errors.Is(err, flag.ErrHelp) || !strings.Contains(usage.String(), "-scenario") {
		t.Errorf("-h: %v, usage %q; want flag.ErrHelp, which main turns into exit 0", err, usage.String())
	}
}

func TestList(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-list"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	for _, s := range pacetest.Scenarios() {
		if !strings.Contains(out.String(), "  "+s.Name+" ") {
			t.Errorf("-list lacks %s", s.Name)
		}
	}
	for _, c := range contenders {
		if !strings.Contains(out.String(), "  "+c.Name+" ") {
			t.Errorf("-list lacks %s", c.Name)
		}
	}
}

func TestStatedOptions(t *testing.T) {
	for _, tt := range []struct {
		cfg  pacetest.Config
		want int // options
	}{
		{pacetest.Config{Rate: 100, Burst: 10}, 1},
		{pacetest.Config{Rate: 100, TokenRate: 1000}, 2},
		{pacetest.Config{Window: time.Second, Quota: 50}, 1},
		{pacetest.Config{MaxInFlight: 8}, 1},
		{pacetest.Config{Window: time.Second}, 0}, // refuses everything
		{pacetest.Config{Rate: 100, Models: map[string]pacetest.Limits{"a": {Rate: 1}}}, 0},
	} {
		if got := len(statedOptions(pacetest.Scenario{Server: tt.cfg})); got != tt.want {
			t.Errorf("statedOptions(%+v): %d options, want %d", tt.cfg, got, tt.want)
		}
	}
}

func TestLimitLine(t *testing.T) {
	s := pacetest.Scenario{Server: pacetest.Config{Rate: 100, Schedule: []pacetest.Change{{At: time.Second, Rate: 50}}}}
	got := limitLine(s, 2*time.Second)
	if len(got) != 4 || got[1].X != 1 || got[1].Y != 100 || got[2].Y != 50 || got[3].X != 2 {
		t.Errorf("limitLine = %v", got)
	}
	if got := limitLine(pacetest.Scenario{}, time.Second); got != nil {
		t.Errorf("no limit: %v, want no line", got)
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…"},
		{"aµb", 2, "a…"}, // µ is two bytes: never cut inside it
	} {
		if got := shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
