// Command pacedemo pushes a batch of requests through a fake rate-limited
// API once per contender (no retry, a hand-written retry loop,
// go-retryablehttp, failsafe-go, pacehttp) and prints how long each took
// against the physical bound, how often it was throttled, and its latency.
//
// With no flags it runs the steady scenario in about twenty seconds:
//
//	go run ./cmd/pacedemo
//	go run ./cmd/pacedemo -scenario all -json results.json -plot docs/img
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"golang.org/x/term"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pacedemo:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pacedemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := params{}
	var dialect, scen, jsonPath, plotDir, only string
	var md bool
	fs.IntVar(&p.N, "n", 320, "requests per contender")
	fs.IntVar(&p.Workers, "workers", 64, "concurrent workers per contender")
	fs.Float64Var(&p.Rate, "rate", 200, "the fake API's request limit, per second")
	fs.IntVar(&p.Burst, "burst", 20, "the fake API's request burst")
	fs.Float64Var(&p.TokensPerM, "tokens", 480000, "token limit per minute (tokens scenario)")
	fs.StringVar(&dialect, "dialect", "openai", "rate-limit headers: "+strings.Join(dialectNames(), ", "))
	fs.StringVar(&scen, "scenario", "steady", "scenario: "+strings.Join(scenarioNames, ", ")+", or all")
	fs.DurationVar(&p.Latency, "latency", 10*time.Millisecond, "service time of an accepted request")
	fs.Float64Var(&p.CutFactor, "cut", 3, "stop a contender at this multiple of the physical bound")
	fs.Uint64Var(&p.Seed, "seed", 1, "seed of request costs and overloaded answers")
	fs.StringVar(&jsonPath, "json", "", "write the results to this `file` as JSON")
	fs.StringVar(&plotDir, "plot", "", "write a PNG of accepted requests per second per scenario into this `dir`")
	fs.StringVar(&only, "contenders", "", "comma-separated contender names to run (default all)")
	fs.BoolVar(&md, "markdown", false, "print tables as Markdown")
	probe := addProbeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if probe.url != "" {
		return probe.run(stdout)
	}
	if p.N < 1 || p.Workers < 1 || p.Rate <= 0 || p.Burst < 1 || p.CutFactor <= 0 {
		return fmt.Errorf("-n, -workers, -burst must be at least 1; -rate and -cut positive")
	}
	d, ok := parseDialect(dialect)
	if !ok {
		return fmt.Errorf("unknown dialect %q (want one of %s)", dialect, strings.Join(dialectNames(), ", "))
	}
	p.Dialect = d

	names := []string{scen}
	if scen == "all" {
		names = scenarioNames
	}
	var scenarios []scenario
	for _, n := range names {
		s, err := newScenario(n, p)
		if err != nil {
			return err
		}
		scenarios = append(scenarios, s)
	}
	cs, err := selectContenders(only)
	if err != nil {
		return err
	}

	bi, _ := debug.ReadBuildInfo()
	rep := report{
		Command:   "pacedemo " + strings.Join(args, " "),
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		Params:    p,
		Versions:  map[string]string{},
	}
	fmt.Fprintf(stdout, "pacedemo: %d requests, %d workers, %s, %d CPUs\n", p.N, p.Workers, runtime.Version(), runtime.NumCPU())
	for _, c := range cs {
		if v := moduleVersion(bi, c.Module); v != "" && rep.Versions[c.Module] == "" {
			rep.Versions[c.Module] = v
			fmt.Fprintf(stdout, "  %s %s\n", c.Module, v)
		}
	}

	var prog progress = &lines{w: stderr}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prog = &bar{w: stderr}
	}
	for _, s := range scenarios {
		fmt.Fprintf(stdout, "\n== %s: %s\n", s.Name, s.Description)
		fmt.Fprintf(stdout, "physical bound %s", fmtDur(s.Bound))
		if s.BoundNote != "" {
			fmt.Fprintf(stdout, " (%s)", s.BoundNote)
		}
		fmt.Fprintln(stdout)
		sr := scenarioReport{Name: s.Name, Description: s.Description, Bound: s.Bound, BoundNote: s.BoundNote}
		for _, c := range cs {
			r := runContender(c, s, p, prog)
			r.Version = rep.Versions[c.Module]
			sr.Results = append(sr.Results, r)
		}
		fmt.Fprintln(stdout)
		writeTable(stdout, sr.Results, md)
		rep.Scenarios = append(rep.Scenarios, sr)
		if plotDir != "" {
			path, err := plotScenario(plotDir, s, sr.Results)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "plot: %s\n", path)
		}
	}
	if jsonPath != "" {
		if err := writeJSON(jsonPath, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results: %s\n", jsonPath)
	}
	return nil
}

func dialectNames() []string {
	var ns []string
	for d := pacetest.Dialect(0); !strings.HasPrefix(d.String(), "Dialect("); d++ {
		ns = append(ns, strings.ToLower(d.String()))
	}
	return ns
}

func parseDialect(name string) (pacetest.Dialect, bool) {
	for i, n := range dialectNames() {
		if strings.EqualFold(n, name) {
			return pacetest.Dialect(i), true
		}
	}
	return 0, false
}

func selectContenders(list string) ([]contender, error) {
	if list == "" {
		return contenders, nil
	}
	var cs []contender
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, c := range contenders {
			if strings.EqualFold(c.Name, strings.TrimSpace(name)) {
				cs = append(cs, c)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown contender %q", name)
		}
	}
	return cs, nil
}
