package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// legend says how to read the tables, once per run of the command.
const legend = `bound: the least time any client could take, that of an ideal client that knows the server's rules and sends each request the moment it would be admitted; 1.00x is perfect.
after 1st refusal: the time from the first 429 or 529 a client saw, over the bound of the work left then, from the server's state then.
p50, p99: from the caller's call to its answer; the server answers in its service time, so above that it is time spent in the client: pacehttp holds requests back until the server has room, the others retry after being refused.`

// report is the whole output of a run of the command, as written by -json.
// Its keys are snake_case; durations are in nanoseconds, named _ns.
type report struct {
	Command   string            `json:"command"`
	GoVersion string            `json:"go_version"`
	CPUs      int               `json:"cpus"`
	Parallel  int               `json:"parallel"`
	StopAt    float64           `json:"stop_at_bound_multiple"`
	Versions  map[string]string `json:"versions"`
	Scenarios []scenarioReport  `json:"scenarios"`
}

type scenarioReport struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Bound       time.Duration  `json:"bound_ns"`
	Results     []contenderRun `json:"results"`
	Skipped     []skippedRun   `json:"skipped,omitempty"`

	scenario pacetest.Scenario
}

// contenderRun is one contender's figures on one scenario.
type contenderRun struct {
	Contender string `json:"contender"`
	Version   string `json:"version,omitempty"`
	Setup     string `json:"setup"`
	*pacetest.Result
	// Timeline[i] is the rate, per second, of attempts sent during the
	// i-th bin of TimelineBin that were answered 2xx.
	Timeline    []float64     `json:"accepted_per_second"`
	TimelineBin time.Duration `json:"timeline_bin_ns"`
}

type skippedRun struct {
	Contender string `json:"contender"`
	Why       string `json:"why"`
}

// writeJSON writes rep to path, indented, replacing the file atomically.
func writeJSON(path string, rep report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeScenario prints one scenario's table, as aligned text or Markdown,
// and below it what the table has no room for.
func writeScenario(w io.Writer, sr scenarioReport, md bool) {
	head := []string{"contender", "wall", "wall/bound", "after 1st refusal", "429s", "503/529s", "retries", "failed", "p50", "p99"}
	rows := [][]string{head}
	for _, r := range sr.Results {
		failed := fmt.Sprint(r.Failed)
		if r.Cut > 0 {
			failed += fmt.Sprintf(" (%d cut)", r.Cut)
		}
		rows = append(rows, []string{
			r.Contender, fmtDur(r.Elapsed), fmtRatio(r.Ratio), fmtRatio(r.RatioAfterRefusal),
			fmt.Sprint(r.Refused), fmt.Sprint(r.Overloaded), fmt.Sprint(r.Retries), failed,
			fmtDur(r.P50), fmtDur(r.P99),
		})
	}
	writeRows(w, rows, md)
	var notes []string
	for _, r := range sr.Results {
		for _, x := range extras(r.Result) {
			notes = append(notes, r.Contender+": "+x)
		}
	}
	for _, r := range sr.Results {
		if len(r.Failures) > 0 {
			f := r.Failures[0]
			msg := shorten(f.Example, 200)
			if md {
				msg = "`" + strings.ReplaceAll(msg, "`", "'") + "`"
			}
			notes = append(notes, fmt.Sprintf("%s: %d of %d failures: %s", r.Contender, f.Count, r.Failed-r.Cut, msg))
		}
	}
	for _, r := range sr.Results {
		if r.Stopped {
			at := fmtDur(r.Stop)
			if r.Bound > 0 && r.Bound != pacetest.Never {
				at += fmt.Sprintf(" (%.1fx the bound)", float64(r.Stop)/float64(r.Bound))
			}
			notes = append(notes, fmt.Sprintf("%s was stopped at %s: its %d unfinished requests count as failed.", r.Contender, at, r.Cut))
		}
	}
	for _, s := range sr.Skipped {
		notes = append(notes, s.Contender+": "+s.Why)
	}
	for _, n := range notes {
		if md {
			fmt.Fprintf(w, "- %s\n", n)
		} else {
			fmt.Fprintln(w, n)
		}
	}
}

// extras are the figures only some scenarios have.
func extras(r *pacetest.Result) []string {
	var xs []string
	for _, c := range r.Changes {
		verb := "settled"
		if c.To > c.From {
			verb = "at 90%"
		}
		if c.Reached {
			xs = append(xs, fmt.Sprintf("limit %g -> %g/s at %s: %s after %s", c.From, c.To, fmtDur(c.At), verb, fmtDur(c.Settled)))
		} else {
			xs = append(xs, fmt.Sprintf("limit %g -> %g/s at %s: not %s in the %s left", c.From, c.To, fmtDur(c.At), verb, fmtDur(c.Settled)))
		}
	}
	if sh := r.Sharing; sh != nil {
		shares := make([]string, len(sh.ClientShares))
		for i, s := range sh.ClientShares {
			shares[i] = fmt.Sprintf("%.0f%%", 100*s)
		}
		xs = append(xs, fmt.Sprintf("from 3s, all clients got %.0f%% of the limit with %.1f%% 429s; shares %s",
			100*sh.Aggregate, 100*sh.RefusedShare, strings.Join(shares, " ")))
	}
	if len(r.Streams) > 1 {
		var ss []string
		for _, st := range r.Streams {
			ss = append(ss, fmt.Sprintf("%s %s (%d failed)", st.Name, fmtRatio(st.Ratio), st.Failed))
		}
		xs = append(xs, "streams: "+strings.Join(ss, ", "))
	}
	if r.MostPerRetryAfter > 0 && r.Requests == r.Failed {
		xs = append(xs, fmt.Sprintf("at most %s within one Retry-After", plural(r.MostPerRetryAfter, "attempt")))
	}
	return xs
}

// writeSummary prints a matrix of scenarios by contenders: each cell is
// wall/bound, 429s and failed requests.
func writeSummary(w io.Writer, srs []scenarioReport, cs []contender, md bool) {
	head := []string{"scenario", "bound"}
	for _, c := range cs {
		head = append(head, c.Name)
	}
	rows := [][]string{head}
	for _, sr := range srs {
		row := []string{sr.Name, fmtDur(sr.Bound)}
		for _, c := range cs {
			cell := "-"
			for _, r := range sr.Results {
				if r.Contender == c.Name {
					cell = fmt.Sprintf("%s %d/%d", fmtRatio(r.Ratio), r.Refused, r.Failed)
				}
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	writeRows(w, rows, md)
	fmt.Fprintln(w, "each cell: wall/bound, then 429s/failed requests; - where the contender did not run")
}

func writeRows(w io.Writer, rows [][]string, md bool) {
	if md {
		for i, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == pacetest.Never:
		return "never"
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

func fmtRatio(f float64) string {
	if f == 0 || math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f)
}

// shorten cuts msg to at most n bytes, on a rune boundary, marking the cut.
func shorten(msg string, n int) string {
	if len(msg) <= n {
		return msg
	}
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + "…"
}
