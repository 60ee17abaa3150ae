// Command pacedemo sends the same work through a fake rate-limited API once
// per contender (no retry, the naive loop of the article pacehttp started
// from, go-retryablehttp, failsafe-go, pacehttp learning the limit, pacehttp
// told it) and prints how long each took against the physical bound, how
// often it was refused, and its latency. The scenarios are pacetest's
// matrix, the one `go test -run TestScenarios` holds pacehttp to in virtual
// time; here they run in real time over loopback.
//
// With no flags it runs the article's case (429s that carry only
// Retry-After) beside the same server with OpenAI's rate-limit headers, in
// about twenty seconds with four CPUs or more (two contenders at a time),
// thirty-five with fewer:
//
//	go run ./cmd/pacedemo
//	go run ./cmd/pacedemo -list
//	go run ./cmd/pacedemo -scenario all -json results.json -plot docs/img
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"golang.org/x/term"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0) // -h asked for the usage, which is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "pacedemo:", err)
		os.Exit(2)
	}
}

// A mode is something the command does instead of the demo when its flag
// is given: it adds its flags, and after parsing says whether it was asked
// for, and runs.
type mode interface {
	flags(fs *flag.FlagSet)
	asked() bool
	run(stdout, stderr io.Writer) error
}

// defaultScenarios are the article's case and the same server with headers.
const defaultScenarios = "article,article-openai"

// options are the command's flags.
type options struct {
	scenarios   string
	contenders  string
	parallel    int
	stopAt      float64
	jsonPath    string
	plotDir     string
	markdown    bool
	list        bool
	progressOff bool
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pacedemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pacedemo [flags]\n\nRuns pacetest's scenarios over loopback with each contender and prints the figures.\n\n")
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.scenarios, "scenario", defaultScenarios, "comma-separated scenarios to run, or all (-list shows them)")
	fs.StringVar(&o.contenders, "contenders", "", "comma-separated contenders to run (default all; -list shows them)")
	fs.IntVar(&o.parallel, "parallel", defaultParallel(), "run at most this many contenders at once, each against its own server (default 2 with 4 CPUs or more, else 1)")
	fs.Float64Var(&o.stopAt, "cut", 3, "stop a contender at this multiple of the bound; its unfinished requests count as failed")
	fs.StringVar(&o.jsonPath, "json", "", "write the results to this `file` as JSON")
	fs.StringVar(&o.plotDir, "plot", "", "write a PNG of accepted requests per second per scenario into this `dir`")
	fs.BoolVar(&o.markdown, "markdown", false, "print tables as Markdown")
	fs.BoolVar(&o.list, "list", false, "list the scenarios and contenders, and exit")
	fs.BoolVar(&o.progressOff, "quiet", false, "print no progress")
	// Other things the command can do instead of the demo, each in a file
	// of its own, listed here.
	modes := []mode{newProber()}
	for _, m := range modes {
		m.flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, m := range modes {
		if m.asked() {
			return m.run(stdout, stderr)
		}
	}
	if o.list {
		writeList(stdout)
		return nil
	}
	if o.parallel < 1 || !(o.stopAt > 0) {
		return fmt.Errorf("-parallel must be at least 1 and -cut positive")
	}
	scenarios, err := selectScenarios(o.scenarios)
	if err != nil {
		return err
	}
	cs, err := selectContenders(o.contenders)
	if err != nil {
		return err
	}
	var prog progress = &lines{w: stderr}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prog = newLive(stderr)
	}
	if o.progressOff {
		prog = quiet{}
	}
	return demo(o, "pacedemo "+strings.Join(args, " "), scenarios, cs, prog, stdout)
}

// demo runs the contenders through the scenarios and reports.
func demo(o options, command string, scenarios []pacetest.Scenario, cs []contender, prog progress, stdout io.Writer) error {
	bi, _ := debug.ReadBuildInfo()
	rep := report{
		Command:   command,
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		Parallel:  o.parallel,
		StopAt:    o.stopAt,
		Versions:  map[string]string{},
	}
	fmt.Fprintf(stdout, "pacedemo: %d scenarios, %d contenders, %s, %d CPUs, at most %d runs at once\n",
		len(scenarios), len(cs), runtime.Version(), runtime.NumCPU(), o.parallel)
	for _, c := range cs {
		if v := moduleVersion(bi, c.Module); v != "" && rep.Versions[c.Module] == "" {
			rep.Versions[c.Module] = v
			fmt.Fprintf(stdout, "  %s %s\n", c.Module, v)
		}
	}
	fmt.Fprintf(stdout, "\n%s\n", legend)

	var jobs []job
	for _, s := range scenarios {
		for _, c := range cs {
			jobs = append(jobs, job{s: s, c: c})
		}
	}
	outs := runJobs(jobs, o.parallel, o.stopAt, prog)

	for i, s := range scenarios {
		sr := scenarioReport{Name: s.Name, Description: s.Description, Bound: s.Bound().Total, scenario: s}
		for _, out := range outs[i*len(cs) : (i+1)*len(cs)] {
			switch {
			case out.err != nil:
				return fmt.Errorf("%s / %s: %w", s.Name, out.c.Name, out.err)
			case out.skipped != "":
				sr.Skipped = append(sr.Skipped, skippedRun{Contender: out.c.Name, Why: out.skipped})
				continue
			}
			acc, _ := out.r.Rates(binWidth)
			sr.Results = append(sr.Results, contenderRun{
				Contender: out.c.Name, Version: rep.Versions[out.c.Module], Setup: out.c.Setup,
				Result: out.r, Timeline: acc, TimelineBin: binWidth,
			})
		}
		fmt.Fprintf(stdout, "\n== %s: %s\nbound %s\n\n", s.Name, s.Description, fmtDur(sr.Bound))
		writeScenario(stdout, sr, o.markdown)
		rep.Scenarios = append(rep.Scenarios, sr)
		if o.plotDir != "" {
			path, err := plotScenario(o.plotDir, sr)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "plot: %s\n", path)
		}
	}
	if len(rep.Scenarios) > 1 {
		fmt.Fprintln(stdout, "\n== side by side")
		writeSummary(stdout, rep.Scenarios, cs, o.markdown)
	}
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results: %s\n", o.jsonPath)
	}
	return nil
}

// defaultParallel runs two contenders at once where there is room for
// them. On two cores, two runs at once jitter each other's timing enough
// that a client told the exact limit now and then reaches the server a
// little early and is refused.
func defaultParallel() int {
	if runtime.NumCPU() >= 4 {
		return 2
	}
	return 1
}

// selectScenarios returns pacetest's scenarios named in a comma-separated
// list, or all of them.
func selectScenarios(list string) ([]pacetest.Scenario, error) {
	all := pacetest.Scenarios()
	if list == "all" {
		return all, nil
	}
	var out []pacetest.Scenario
	for _, name := range strings.Split(list, ",") {
		s, ok := pacetest.ScenarioNamed(strings.TrimSpace(name))
		if !ok {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.Name
			}
			return nil, fmt.Errorf("unknown scenario %q; the scenarios are %s, or all", name, quoteAll(names))
		}
		out = append(out, s)
	}
	return out, nil
}

func writeList(w io.Writer) {
	fmt.Fprintln(w, "scenarios (-scenario):")
	for _, s := range pacetest.Scenarios() {
		fmt.Fprintf(w, "  %-18s bound %-7s %s\n", s.Name, fmtDur(s.Bound().Total), s.Description)
	}
	fmt.Fprintln(w, "contenders (-contenders):")
	for _, c := range contenders {
		fmt.Fprintf(w, "  %-18s %s\n", c.Name, c.Setup)
	}
}
