package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// result is one contender's run of one scenario.
type result struct {
	Contender string        `json:"contender"`
	Version   string        `json:"version,omitempty"`
	Setup     string        `json:"setup"`
	Requests  int           `json:"requests"`
	Wall      time.Duration `json:"wall_ns"`
	Bound     time.Duration `json:"bound_ns"`
	Limit     time.Duration `json:"limit_ns"` // when the run would be stopped
	Stopped   bool          `json:"stopped"`  // the run hit Limit
	OverBound float64       `json:"wall_over_bound"`
	Throttled int           `json:"received_429"`
	// Overloaded counts 503 and 529 answers.
	Overloaded int `json:"received_503_529"`
	Attempts   int `json:"attempts"`
	Retries    int `json:"retries"`
	Failed     int `json:"failed"` // includes Unfinished
	Unfinished int `json:"unfinished"`
	// P50 and P99 are over the requests that finished, failed or not.
	P50                   time.Duration `json:"p50_ns"`
	P99                   time.Duration `json:"p99_ns"`
	ServerPeakConcurrency int           `json:"server_peak_concurrency"`
	// Errors counts the failures of finished requests by message, with
	// the URL's port masked so that runs compare.
	Errors map[string]int `json:"errors,omitempty"`
	// Timeline[i] is the rate, per second, of 200 answers received during
	// the i-th bin of TimelineBin from the start of the run.
	Timeline    []float64     `json:"accepted_per_second"`
	TimelineBin time.Duration `json:"timeline_bin_ns"`
}

// summarize turns the outcomes of a run into its table row.
func summarize(outs []outcome, wall, bound time.Duration) result {
	r := result{Requests: len(outs), Wall: wall, Bound: bound, OverBound: overBound(wall, bound), TimelineBin: binWidth}
	var lat []time.Duration
	for _, o := range outs {
		if !o.OK {
			r.Failed++
		}
		if o.Cut {
			r.Unfinished++
			continue
		}
		if o.Err != "" {
			if r.Errors == nil {
				r.Errors = map[string]int{}
			}
			r.Errors[maskError(o.Err)]++
		}
		r.Retries += max(o.Attempts-1, 0)
		lat = append(lat, o.Latency)
	}
	r.P50 = percentile(lat, 50)
	r.P99 = percentile(lat, 99)
	return r
}

// overBound is wall time over the physical bound; 0 when the bound is 0
// (a batch no larger than the burst), where the ratio means nothing.
func overBound(wall, bound time.Duration) float64 {
	if bound <= 0 {
		return 0
	}
	return float64(wall) / float64(bound)
}

// percentile is the nearest-rank p-th percentile of ds: the smallest value
// at or below which p percent of them lie. It is 0 for no values.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// perSecond bins event offsets into bins of width w, as events per second.
func perSecond(at []time.Duration, w time.Duration) []float64 {
	var bins []float64
	for _, t := range at {
		i := int(t / w)
		for len(bins) <= i {
			bins = append(bins, 0)
		}
		bins[i] += float64(time.Second) / float64(w)
	}
	return bins
}

// writeTable prints the results of one scenario as an aligned table, or as
// Markdown when md is set, followed by a note for every stopped contender.
func writeTable(w io.Writer, rs []result, md bool) {
	head := []string{"contender", "wall", "wall/bound", "429s", "503/529s", "retries", "failed", "p50", "p99"}
	rows := [][]string{head}
	for _, r := range rs {
		failed := fmt.Sprint(r.Failed)
		if r.Unfinished > 0 {
			failed += fmt.Sprintf(" (%d cut)", r.Unfinished)
		}
		rows = append(rows, []string{
			r.Contender,
			fmtDur(r.Wall),
			fmtRatio(r.OverBound),
			fmt.Sprint(r.Throttled),
			fmt.Sprint(r.Overloaded),
			fmt.Sprint(r.Retries),
			failed,
			fmtDur(r.P50),
			fmtDur(r.P99),
		})
	}
	if md {
		for i, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, row := range rows {
			fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
		}
		_ = tw.Flush()
	}
	for _, r := range rs {
		if msg, n := commonest(r.Errors); n > 0 {
			fmt.Fprintf(w, "\n%s: %d of %d failures: %s", r.Contender, n, r.Failed-r.Unfinished, shorten(msg, 200))
		}
	}
	for _, r := range rs {
		if r.Stopped {
			fmt.Fprintf(w, "\n%s was stopped at %s (%gx the bound): its %d unfinished requests count as failed.",
				r.Contender, fmtDur(r.Limit), math.Round(float64(r.Limit)/float64(r.Bound)*10)/10, r.Unfinished)
		}
	}
	fmt.Fprintln(w)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

func fmtRatio(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f)
}

// report is the whole output of a run, as written by -json.
type report struct {
	Command   string            `json:"command"`
	GoVersion string            `json:"go_version"`
	CPUs      int               `json:"cpus"`
	Params    params            `json:"params"`
	Versions  map[string]string `json:"versions"`
	Scenarios []scenarioReport  `json:"scenarios"`
}

type scenarioReport struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Bound       time.Duration `json:"bound_ns"`
	BoundNote   string        `json:"bound_note,omitempty"`
	Results     []result      `json:"results"`
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

var (
	portRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	durationRE = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m)\b`)
	keyRE      = regexp.MustCompile(`#[0-9a-f]{8,}`)
	attemptRE  = regexp.MustCompile(`attempt \d+`)
)

// maskError hides what varies between failures of one kind in an error
// message (the fake API's port, durations, attempt numbers, partition
// hashes), so that they count as one.
func maskError(msg string) string {
	msg = portRE.ReplaceAllString(msg, "127.0.0.1:PORT")
	msg = durationRE.ReplaceAllString(msg, "D")
	msg = keyRE.ReplaceAllString(msg, "#KEY")
	return attemptRE.ReplaceAllString(msg, "attempt N")
}

// commonest returns the most frequent message in errs and its count; ties
// go to the lexically first message, so output is stable.
func commonest(errs map[string]int) (string, int) {
	var best string
	n := 0
	for msg, c := range errs {
		if c > n || (c == n && msg < best) {
			best, n = msg, c
		}
	}
	return best, n
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
