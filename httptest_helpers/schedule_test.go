package pacetest

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// probe sends a request every 10ms for d, far more often than any limit
// here allows, so that every unit of quota is taken as it comes.
func probe(t *testing.T, api *API, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		call(t, api.Transport(), "", 1)
	}
}

func TestSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The changes are out of order on purpose: they apply by time.
		api := NewAPI(Config{Rate: 10, Burst: 1, Schedule: []Change{
			{At: 4 * time.Second, Rate: 10},
			{At: 2 * time.Second, Rate: 5},
		}})
		defer api.Close()
		probe(t, api, 6*time.Second)
		if diff := cmp.Diff([]int{10, 10, 5, 5, 10, 10}, api.Stats().Timeline); diff != "" {
			t.Errorf("Timeline (-want +got):\n%s", diff)
		}
	})
}

func TestScheduleWindowAndCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Window: time.Second, Quota: 4, Schedule: []Change{{At: time.Second, Quota: 2}}})
		defer api.Close()
		probe(t, api, 3*time.Second)
		if diff := cmp.Diff([]int{4, 2, 2}, api.Stats().Timeline); diff != "" {
			t.Errorf("Timeline (-want +got):\n%s", diff)
		}
	})
}

func TestOverloadBursts(t *testing.T) {
	for _, hint := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			api := NewAPI(Config{OverloadBursts: OverloadBursts{Every: 3 * time.Second, For: time.Second, Offset: time.Second, RetryAfter: hint}, Dialect: OpenAI, Rate: 1000})
			defer api.Close()
			type row struct {
				At     time.Duration
				Status int
				Hint   string
				Rate   string
			}
			start := time.Now()
			var got []row
			for _, at := range []time.Duration{0, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second, 4200 * time.Millisecond, 5 * time.Second} {
				time.Sleep(start.Add(at).Sub(time.Now()))
				r := call(t, api.Transport(), "", 1)
				got = append(got, row{at, r.StatusCode, r.Header.Get("Retry-After"), r.Header.Get("X-Ratelimit-Limit-Requests")})
			}
			hintAt := func(s string) string {
				if hint {
					return s
				}
				return ""
			}
			want := []row{
				{0, 200, "", "1000"},
				{999 * time.Millisecond, 200, "", "1000"},
				{time.Second, 529, hintAt("1"), ""},
				{1500 * time.Millisecond, 529, hintAt("1"), ""},
				{2 * time.Second, 200, "", "1000"},
				{4200 * time.Millisecond, 529, hintAt("1"), ""},
				{5 * time.Second, 200, "", "1000"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hint %v: answers (-want +got):\n%s", hint, diff)
			}
			if st := api.Stats(); st.Overloaded != 3 || st.Refused != 0 || st.Accepted != 4 {
				t.Errorf("Stats: %+v", st)
			}
		})
	}
}
