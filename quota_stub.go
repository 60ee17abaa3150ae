package pacehttp

import (
	"net/http"
	"time"
)

// TODO(hints): stand-in for the parser on branch hints; deleted at merge.

type quota struct {
	Name      string
	Limit     int64
	Remaining int64
	Reset     time.Duration
	Window    time.Duration
	Refill    bool
	Source    string
}

func (q quota) nextUnit() time.Duration {
	if q.Remaining != 0 || q.Reset < 0 {
		return 0
	}
	if n := time.Duration(q.Limit - q.Remaining); q.Refill && n > 0 {
		return (q.Reset + n - 1) / n
	}
	return q.Reset
}

func (q quota) refillRate() float64 {
	switch {
	case q.Window > 0 && q.Limit > 0:
		return float64(q.Limit) / q.Window.Seconds()
	case q.Refill && q.Reset > 0 && q.Remaining >= 0 && q.Limit > q.Remaining:
		return float64(q.Limit-q.Remaining) / q.Reset.Seconds()
	case q.Reset > 0 && q.Limit > 0:
		return float64(q.Limit) / q.Reset.Seconds()
	}
	return 0
}

func parseQuotas(h http.Header, now time.Time) ([]quota, error) { return nil, nil }
