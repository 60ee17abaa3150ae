package pacehttp_test

import (
	"flag"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

var sweepK = flag.Int("sweep.k", 5, "runs per scenario")
var sweepOnly = flag.String("sweep.only", "", "comma-separated scenario names")
var sweepCond = flag.String("sweep.cond", "", "instant or network; both if empty")

func TestSweep(t *testing.T) {
	type row struct {
		name                 string
		pass                 int
		ratios, afters, r429 []float64
		failed               int
		miss                 map[string]int
	}
	var mu sync.Mutex
	var rows []*row
	for _, s := range pacetest.Scenarios() {
		if *sweepOnly != "" && !strings.Contains(","+*sweepOnly+",", ","+s.Name+",") {
			continue
		}
		for _, c := range conditions {
			if *sweepCond != "" && c.name != *sweepCond {
				continue
			}
			r := &row{name: s.Name + "/" + c.name, miss: map[string]int{}}
			rows = append(rows, r)
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				naive := runScenario(t, c.runner(), s, func(base http.RoundTripper) http.RoundTripper { return pacetest.NaiveRetry(base, 5) })
				for range *sweepK {
					p := runScenario(t, c.runner(), s, pacehttpClient(s))
					ms := goals[s.Name].check(s, p, naive)
					mu.Lock()
					if len(ms) == 0 {
						r.pass++
					}
					for _, m := range ms {
						k := m
						if i := strings.IndexAny(k, "0123456789"); i > 0 {
							k = k[:i]
						}
						r.miss[k]++
					}
					r.ratios = append(r.ratios, p.Ratio)
					r.afters = append(r.afters, p.RatioAfterRefusal)
					r.r429 = append(r.r429, 100*p.RefusedPerRequest)
					r.failed = max(r.failed, p.Failed-p.BoundFailed)
					mu.Unlock()
				}
			})
		}
	}
	t.Cleanup(func() {
		med := func(x []float64) (float64, float64) {
			y := append([]float64(nil), x...)
			sort.Float64s(y)
			if len(y) == 0 {
				return 0, 0
			}
			return y[len(y)/2], y[len(y)-1]
		}
		total := 0
		for _, r := range rows {
			a, am := med(r.ratios)
			b, bm := med(r.afters)
			c, cm := med(r.r429)
			var ms []string
			for k, v := range r.miss {
				ms = append(ms, fmt.Sprintf("%s×%d", strings.TrimSpace(k), v))
			}
			sort.Strings(ms)
			if r.pass == *sweepK {
				total++
			}
			fmt.Printf("%-26s %d/%d  ratio %.2f (max %.2f)  after %.2f (%.2f)  429 %.1f%% (%.1f)  fail %d  %s\n", r.name, r.pass, *sweepK, a, am, b, bm, c, cm, r.failed, strings.Join(ms, "; "))
		}
		fmt.Printf("all runs pass: %d of %d scenarios\n", total, len(rows))
	})
}
