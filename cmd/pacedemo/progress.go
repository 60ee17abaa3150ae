package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// bar draws a progress bar that redraws itself in place, for a terminal.
type bar struct {
	w     io.Writer
	name  string
	total int
	limit time.Duration
}

func (b *bar) start(name string, total int, limit time.Duration) {
	b.name, b.total, b.limit = name, total, limit
	b.update(0, 0)
}

func (b *bar) update(done int, elapsed time.Duration) {
	const width = 30
	fill := 0
	if b.total > 0 {
		fill = done * width / b.total
	}
	fmt.Fprintf(b.w, "\r\033[K%-17s [%s%s] %4d/%d  %5.1fs (stop at %.1fs)",
		b.name, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, b.total, elapsed.Seconds(), b.limit.Seconds())
}

func (b *bar) finish(done int, elapsed time.Duration) {
	b.update(done, elapsed)
	fmt.Fprintln(b.w)
}

// lines reports progress as plain lines, about once a second, for a log.
type lines struct {
	w     io.Writer
	name  string
	total int
	last  time.Duration
}

func (l *lines) start(name string, total int, limit time.Duration) {
	l.name, l.total, l.last = name, total, 0
	fmt.Fprintf(l.w, "%s: %d requests, stop at %.1fs\n", name, total, limit.Seconds())
}

func (l *lines) update(done int, elapsed time.Duration) {
	if elapsed-l.last < time.Second {
		return
	}
	l.last = elapsed
	fmt.Fprintf(l.w, "%s: %d/%d done at %.1fs\n", l.name, done, l.total, elapsed.Seconds())
}

func (l *lines) finish(done int, elapsed time.Duration) {
	fmt.Fprintf(l.w, "%s: %d/%d done in %.2fs\n", l.name, done, l.total, elapsed.Seconds())
}

// quiet reports nothing.
type quiet struct{}

func (quiet) start(string, int, time.Duration) {}
func (quiet) update(int, time.Duration)        {}
func (quiet) finish(int, time.Duration)        {}
