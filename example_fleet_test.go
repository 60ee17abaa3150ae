package pacehttp_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// sharedRefusals is a FleetBudget in memory: the processes of its fleet
// (here, pacers in one program) tell each other of their refusals. A real
// one, such as redislimit's, also keeps one bucket for the fleet, at the
// sum of the shares the pacers learn.
type sharedRefusals struct {
	pacehttp.Budget
	mu       sync.Mutex
	latest   time.Time
	reported int
}

func (s *sharedRefusals) Refused(_ context.Context, _, sent time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reported++
	if sent.After(s.latest) {
		s.latest = sent
	}
	return nil
}

func (s *sharedRefusals) LatestRefusal() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

func (s *sharedRefusals) FleetRate() float64 { return 0 } // unknown: the learner's own

type fleetLimiter struct{ b *sharedRefusals }

func (l fleetLimiter) Budget(string) pacehttp.Budget { return l.b }

// A FleetBudget hears of every refusal the pacer meets while it learns a
// limit, and tells it of those met elsewhere in the fleet.
func ExampleFleetBudget() {
	api := pacetest.NewAPI(pacetest.Config{Rate: 1, Burst: 2}) // Retry-After alone
	defer api.Close()
	fleet := &sharedRefusals{Budget: pacehttp.NewLocalLimiter().Budget("")}
	rt := pacehttp.Pace(pacehttp.WithLimiter(fleetLimiter{fleet}))(api.Transport())
	for range 3 {
		get(rt, context.Background()) // the third is refused
	}
	fmt.Println("refusals reported:", fleet.reported)
	// Output: refusals reported: 1
}
