package pacetest

import "time"

// window counts the requests admitted in a fixed or a sliding window.
// Fixed windows are consecutive periods of size from start.
type window struct {
	size    time.Duration
	sliding bool
	start   time.Time

	period int64       // fixed: the index of the period count belongs to
	count  int         // fixed: requests admitted in that period
	times  []time.Time // sliding: admissions still inside the window, oldest first
}

// expire forgets what has left the window by now.
func (w *window) expire(now time.Time) {
	if w.sliding {
		// An admission at a leaves at a+size exactly.
		i := 0
		for i < len(w.times) && !w.times[i].Add(w.size).After(now) {
			i++
		}
		w.times = w.times[i:]
		return
	}
	if p := w.periodOf(now); p != w.period {
		w.period, w.count = p, 0
	}
}

func (w *window) periodOf(now time.Time) int64 { return int64(now.Sub(w.start) / w.size) }

func (w *window) used(now time.Time) int {
	w.expire(now)
	if w.sliding {
		return len(w.times)
	}
	return w.count
}

// wait reports whether one more request fits the quota at now and, if not,
// how long until it would.
func (w *window) wait(now time.Time, quota int) (time.Duration, bool) {
	n := w.used(now)
	if n < quota {
		return 0, true
	}
	if !w.sliding {
		return w.periodEnd(now).Sub(now), false
	}
	if quota <= 0 || len(w.times) == 0 {
		return w.size, false // nothing will leave: ask again in a window
	}
	// The admission that must leave before one more fits.
	return w.times[n-quota].Add(w.size).Sub(now), false
}

func (w *window) periodEnd(now time.Time) time.Time {
	return w.start.Add(time.Duration(w.periodOf(now)+1) * w.size)
}

func (w *window) take(now time.Time) {
	w.expire(now)
	if w.sliding {
		w.times = append(w.times, now)
	} else {
		w.count++
	}
}

// quota describes the window at now for the rate-limit headers.
func (w *window) quota(now time.Time, limit int) quota {
	n := w.used(now)
	q := quota{limit: limit, remaining: max(0, limit-n), window: w.size}
	switch {
	case n == 0:
	case !w.sliding:
		q.untilNext = w.periodEnd(now).Sub(now)
		q.untilFull = q.untilNext
	default:
		q.untilNext = w.times[0].Add(w.size).Sub(now)
		q.untilFull = w.times[len(w.times)-1].Add(w.size).Sub(now)
	}
	return q
}
