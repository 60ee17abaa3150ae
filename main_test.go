package pacehttp

import (
	"net/http"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// eventCounter returns a hook option that counts the events of kind, and
// the count.
func eventCounter(kind EventKind) (SharedOption, *atomic.Int32) {
	n := new(atomic.Int32)
	return WithHook(func(e Event) {
		if e.Kind == kind {
			n.Add(1)
		}
	}), n
}
