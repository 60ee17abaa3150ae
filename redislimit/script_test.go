package redislimit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

// TestCluster runs every operation against Redis Cluster, which refuses a
// script whose keys lie in different slots.
func TestCluster(t *testing.T) {
	srv := startCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.addr}, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()

	// The cluster enforces slots: keys without a common tag are refused.
	err := script.Run(ctx, rdb, []string{"pacehttp:a", "pacehttp:b", "pacehttp:c"}, "sync").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script over untagged keys on the cluster: %v, want CROSSSLOT", err)
	}

	var rec recorder
	l := New(rdb, WithHook(rec.hook), WithFailMode(FailClosed), WithTimeout(time.Second))
	defer l.Close()
	b := l.Budget("api.test#0123")
	if err := b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 10, 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLimits(ctx, time.Now(), pacehttp.Limits{Source: pacehttp.LimitsFromHeaders,
		Requests: pacehttp.BucketLimits{Rate: 10, Burst: 2, Remaining: 1}, Tokens: unknown()}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, cancel, err := b.Reserve(ctx, time.Now(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cancel != nil {
			cancel()
		}
	}
	if err := b.CoolDown(ctx, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.(Counter).Counts(ctx, time.Now(), time.Now().Add(-time.Second), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, e := range rec.of(pacehttp.EventStoreCall) {
		if e.Err != nil {
			t.Errorf("%s on the cluster: %v", e.Reason, e.Err)
		}
	}
}
