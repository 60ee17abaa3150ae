package pacehttp

import (
	"net/http"
	"time"
)

// TODO(hints): placeholder signatures; the parser lands with its own tests.

// A Hint is the server's word on when to try again.
type Hint struct {
	Wait   time.Duration
	Source string
}

func retryHint(h http.Header, now time.Time) (Hint, bool, error) { return Hint{}, false, nil }
