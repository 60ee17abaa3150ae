package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPhysicalBound(t *testing.T) {
	tests := []struct {
		name        string
		need, burst float64
		rates       []rateChange
		want        time.Duration
	}{
		{"constant rate is (N-burst)/rate", 400, 10, []rateChange{{0, 100}}, 3900 * time.Millisecond},
		{"batch within the burst", 10, 10, []rateChange{{0, 100}}, 0},
		// 380 beyond the burst: 100 in the first 0.5s, 100 in the halved
		// second, then 180 at 200/s take 0.9s more.
		{"halved for a second", 400, 20, []rateChange{{0, 200}, {500 * time.Millisecond, 100}, {1500 * time.Millisecond, 200}}, 2400 * time.Millisecond},
		{"done before the drop", 100, 0, []rateChange{{0, 100}, {2 * time.Second, 50}}, time.Second},
		{"unsorted changes", 400, 20, []rateChange{{1500 * time.Millisecond, 200}, {0, 200}, {500 * time.Millisecond, 100}}, 2400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := physicalBound(tt.need, tt.burst, tt.rates)
			if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("physicalBound = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScenarioBounds(t *testing.T) {
	p := params{N: 320, Rate: 200, Burst: 20, TokensPerM: 480000, Seed: 1}
	for _, name := range scenarioNames {
		t.Run(name, func(t *testing.T) {
			s, err := newScenario(name, p)
			if err != nil {
				t.Fatal(err)
			}
			plain := 1500 * time.Millisecond // (320-20)/200
			switch name {
			case "steady", "retry-after", "shared":
				if s.Bound != plain {
					t.Errorf("bound = %v, want %v", s.Bound, plain)
				}
			case "overload":
				want := seconds((320/0.8 - 20) / 200) // 1.9s
				if d := s.Bound - want; d < -time.Microsecond || d > time.Microsecond {
					t.Errorf("bound = %v, want %v", s.Bound, want)
				}
			default: // drop and tokens can only be slower
				if s.Bound <= plain {
					t.Errorf("bound = %v, want more than %v", s.Bound, plain)
				}
			}
		})
	}
	if _, err := newScenario("nope", p); err == nil {
		t.Error("newScenario(nope) succeeded")
	}
}

func TestTokenBound(t *testing.T) {
	p := params{N: 100, Rate: 1000, Burst: 100, TokensPerM: 60000, Seed: 1}
	s, err := newScenario("tokens", p)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range s.Costs {
		if c < 20 || c > 180 {
			t.Fatalf("cost %d outside 20..180", c)
		}
		total += c
	}
	want := seconds(float64(total-1000) / 1000) // 1000 tokens/s, one second's burst
	if d := s.Bound - want; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("bound = %v, want %v (total cost %d)", s.Bound, want, total)
	}
	if got := len(requestBody(100)); got != 400 {
		t.Errorf("body for cost 100 is %d bytes, want 400", got)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 99, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{ms(5, 1), 0, time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %g) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	outs := []outcome{
		{OK: true, Attempts: 1, Latency: 10 * time.Millisecond},
		{OK: true, Attempts: 3, Latency: 30 * time.Millisecond},
		{OK: false, Attempts: 5, Latency: 20 * time.Millisecond},
		{Cut: true, Attempts: 2, Latency: 90 * time.Second}, // in flight at the stop
		{Cut: true}, // never started
	}
	got := summarize(outs, 3*time.Second, 2*time.Second)
	want := result{
		Requests: 5, Wall: 3 * time.Second, Bound: 2 * time.Second, OverBound: 1.5,
		Retries: 2 + 4, Failed: 3, Unfinished: 2,
		P50: 20 * time.Millisecond, P99: 30 * time.Millisecond, TimelineBin: binWidth,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("summarize (-want +got):\n%s", d)
	}
	if r := summarize(nil, time.Second, 0); r.OverBound != 0 {
		t.Errorf("OverBound with a zero bound = %g, want 0", r.OverBound)
	}
}

func TestPerSecond(t *testing.T) {
	at := []time.Duration{0, 100 * time.Millisecond, 600 * time.Millisecond}
	got := perSecond(at, 250*time.Millisecond)
	want := []float64{8, 0, 4} // two in the first quarter second, one in the third
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("perSecond (-want +got):\n%s", d)
	}
}

func TestWriteTable(t *testing.T) {
	rs := []result{
		{Contender: "a", Wall: 1500 * time.Millisecond, OverBound: 1.5, Throttled: 3, Retries: 3, P50: 2 * time.Millisecond, P99: 40 * time.Microsecond},
		{Contender: "b", Wall: 3 * time.Second, Bound: time.Second, OverBound: 3, Failed: 7, Unfinished: 5, Limit: 3 * time.Second, Stopped: true},
	}
	var plain, md bytes.Buffer
	writeTable(&plain, rs, false)
	writeTable(&md, rs, true)
	for _, want := range []string{"1.50s", "1.50x", "7 (5 cut)", "40µs", "b was stopped at 3.00s (3x the bound): its 5 unfinished requests count as failed."} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, plain.String())
		}
	}
	lines := strings.Split(md.String(), "\n")
	if lines[0] != "| contender | wall | wall/bound | 429s | 503/529s | retries | failed | p50 | p99 |" || lines[1] != "|---|---|---|---|---|---|---|---|---|" {
		t.Errorf("Markdown header:\n%s", md.String())
	}
}

// TestRun runs every contender end to end on a tiny batch that fits the
// limit, and checks the JSON and the plot it writes.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "r.json")
	var out, errs bytes.Buffer
	args := []string{"-n", "30", "-workers", "4", "-rate", "1000", "-burst", "100", "-latency", "0", "-json", jsonPath, "-plot", dir}
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("run: %v\n%s", err, errs.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Results) != len(contenders) {
		t.Fatalf("report has %d scenarios, want 1 with %d results:\n%s", len(rep.Scenarios), len(contenders), b)
	}
	for _, r := range rep.Scenarios[0].Results {
		if r.Requests != 30 || r.Failed != 0 || r.Throttled != 0 || r.Attempts != 30 {
			t.Errorf("%s: %d requests, %d failed, %d 429s, %d attempts; want 30, 0, 0, 30", r.Contender, r.Requests, r.Failed, r.Throttled, r.Attempts)
		}
	}
	for _, key := range []string{`"wall_over_bound"`, `"received_429"`, `"accepted_per_second"`, `"p99_ns"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "steady.png")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(out.String(), "pacehttp+rate") {
		t.Errorf("output lacks the last contender:\n%s", out.String())
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-dialect", "nope"},
		{"-contenders", "nope"},
		{"-n", "0"},
		{"extra"},
	} {
		if err := run(args, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestMaskError(t *testing.T) {
	in := `Get "http://127.0.0.1:39211/v1/items": pacehttp: gave up after attempt 2 (retry budget exhausted): pacehttp: pacing wait 10.02s exceeds context deadline (4.2587s left) in partition 127.0.0.1:39211#df7eda98db4b46bf`
	want := `Get "http://127.0.0.1:PORT/v1/items": pacehttp: gave up after attempt N (retry budget exhausted): pacehttp: pacing wait D exceeds context deadline (D left) in partition 127.0.0.1:PORT#KEY`
	if got := maskError(in); got != want {
		t.Errorf("maskError:\n got %s\nwant %s", got, want)
	}
	if msg, n := commonest(map[string]int{"b": 2, "a": 2, "c": 1}); msg != "a" || n != 2 {
		t.Errorf("commonest = %q, %d; want a, 2", msg, n)
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
