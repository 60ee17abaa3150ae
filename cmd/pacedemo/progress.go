package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// progress hears of runs as they go; several may run at once, so every
// method is safe for concurrent use.
type progress interface {
	start(name string, total int)
	update(name string, ended int)
	finish(name string, took time.Duration)
}

// runState is one run in progress.
type runState struct {
	ended, total int
}

// live redraws one line listing the runs in progress, for a terminal.
type live struct {
	w    io.Writer
	mu   sync.Mutex
	runs map[string]*runState
	last time.Time
}

func newLive(w io.Writer) *live { return &live{w: w, runs: map[string]*runState{}} }

func (l *live) start(name string, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[name] = &runState{total: total}
	l.draw(true)
}

func (l *live) update(name string, ended int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.runs[name]; r != nil && ended > r.ended {
		r.ended = ended
	}
	l.draw(false)
}

func (l *live) finish(name string, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.runs, name)
	fmt.Fprintf(l.w, "\r\033[K%s: done in %.1fs\n", name, took.Seconds())
	l.draw(true)
}

// draw rewrites the line, at most ten times a second unless forced.
func (l *live) draw(force bool) {
	if !force && time.Since(l.last) < 100*time.Millisecond {
		return
	}
	l.last = time.Now()
	names := slices.Sorted(maps.Keys(l.runs))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d/%d", n, l.runs[n].ended, l.runs[n].total)
	}
	fmt.Fprintf(l.w, "\r\033[K%s", strings.Join(parts, "  |  "))
}

// lines reports each run's start and end as plain lines, for a log.
type lines struct {
	w  io.Writer
	mu sync.Mutex
}

func (l *lines) start(name string, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: %d requests\n", name, total)
}

func (l *lines) update(string, int) {}

func (l *lines) finish(name string, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: done in %.1fs\n", name, took.Seconds())
}

// quiet reports nothing.
type quiet struct{}

func (quiet) start(string, int)            {}
func (quiet) update(string, int)           {}
func (quiet) finish(string, time.Duration) {}
