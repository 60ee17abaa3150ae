package main

import (
	"net/http"
	"sync"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// binWidth is the resolution of the accepted-requests timeline.
const binWidth = 250 * time.Millisecond

// job is one contender's run of one scenario.
type job struct {
	s pacetest.Scenario
	c contender
}

// outcome is a job's result, or why it did not run.
type outcome struct {
	job
	r       *pacetest.Result
	skipped string // why the contender did not run; "" when it did
	err     error
}

// runJobs runs every job over loopback, at most parallel at once, each
// against its own server, and returns the outcomes in the jobs' order.
func runJobs(jobs []job, parallel int, stopAt float64, prog progress) []outcome {
	out := make([]outcome, len(jobs))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = runJob(j, stopAt, prog)
		})
	}
	wg.Wait()
	return out
}

func runJob(j job, stopAt float64, prog progress) outcome {
	// Building the clients first tells whether the contender can run.
	if j.c.New(http.DefaultTransport, j.s) == nil {
		return outcome{job: j, skipped: "not told: the limit is not one pacehttp can be given"}
	}
	name := j.s.Name + " / " + j.c.Name
	total := j.s.Requests()
	prog.start(name, total)
	runner := pacetest.Runner{
		Loopback: true,
		StopAt:   stopAt,
		Progress: func(ended int) { prog.update(name, ended) },
	}
	began := time.Now()
	r, err := runner.Run(j.s, func(base http.RoundTripper) http.RoundTripper { return j.c.New(base, j.s) })
	prog.finish(name, time.Since(began))
	return outcome{job: j, r: r, err: err}
}
