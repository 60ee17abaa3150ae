package pacehttp

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// keyRecorder is a Limiter that records the partition keys it is asked for.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *keyRecorder) Budget(key string) Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
	return newLocalBudget()
}

func TestPartitionSecret(t *testing.T) {
	api := pacetest.NewAPI(pacetest.Config{})
	defer api.Close()
	const cred = "Bearer sk-secret-credential"
	name := func(opts ...PaceOption) string {
		rec := &keyRecorder{}
		rt := Pace(append(opts, WithLimiter(rec))...)(api.Transport())
		req, _ := http.NewRequest("GET", api.URL(), nil)
		req.Header.Set("Authorization", cred)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(rec.keys) != 1 {
			t.Fatalf("Budget called for %q, want one key", rec.keys)
		}
		if k := rec.keys[0]; strings.Contains(k, "sk-secret") {
			t.Fatalf("partition key %q holds the credential", k)
		}
		return rec.keys[0]
	}
	a := name(WithPartitionSecret([]byte("fleet")))
	b := name(WithPartitionSecret([]byte("fleet")))
	if a != b {
		t.Errorf("same secret: names %q and %q differ", a, b)
	}
	if c := name(WithPartitionSecret([]byte("other"))); c == a {
		t.Errorf("different secrets: both names are %q", a)
	}
	if r1, r2 := name(), name(); r1 == r2 {
		t.Errorf("random secrets: both names are %q", r1)
	}
}
