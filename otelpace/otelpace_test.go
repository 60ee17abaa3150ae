package otelpace_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"github.com/pacehttp/pacehttp/otelpace"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// collect returns every data point's value by metric name and attribute
// set (written key=value,...), and every attribute value seen.
func collect(t *testing.T, r *sdkmetric.ManualReader) (map[string]map[string]float64, []string) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points := map[string]map[string]float64{}
	var values []string
	add := func(name string, set attribute.Set, v float64) {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.Emit())
			values = append(values, a.Value.Emit())
		}
		if points[name] == nil {
			points[name] = map[string]float64{}
		}
		points[name][strings.Join(kv, ",")] += v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Count))
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, p.Value)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return points, values
}

// TestHook runs in a synctest bubble: the in-memory API's Retry-After
// waits take no real time.
func TestHook(t *testing.T) { synctest.Test(t, testHook) }

func testHook(t *testing.T) {
	api := pacetest.NewScripted(
		pacetest.TooManyRequests("1"),
		pacetest.Status(503),
		pacetest.OK(`{}`),
		pacetest.TooManyRequests("1"),
	)
	defer api.Close()
	reader := sdkmetric.NewManualReader()
	hook, err := otelpace.NewHook(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")

	rt := pacehttp.New(api.Transport(), pacehttp.WithHook(hook), pacehttp.WithBackoff(time.Millisecond, 2*time.Millisecond))
	do := func(ctx context.Context, opts ...pacehttp.Option) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/v1/chat?api_key=SECRET-QUERY", nil)
		req.Header.Set("Authorization", "Bearer SECRET-HEADER")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx, span := tracer.Start(context.Background(), "call")
	do(ctx) // 429, 503, 200
	span.End()
	rt = pacehttp.New(api.Transport(), pacehttp.WithHook(hook), pacehttp.WithMaxAttempts(1))
	do(context.Background()) // 429, given up

	points, values := collect(t, reader)
	const host = "api.test"
	h := "server.address=" + host
	want := map[string]map[string]float64{
		"pacehttp.attempts": {h: 4},
		"pacehttp.retries": {
			"http.response.status_code=429,pacehttp.reason=status 429," + h: 1,
			"http.response.status_code=503,pacehttp.reason=status 503," + h: 1,
		},
		"pacehttp.backoff.wait": {h: 2},
		"pacehttp.give_ups": {
			"http.response.status_code=429,pacehttp.reason=status 429: attempts exhausted," + h: 1,
		},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, points[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	for _, name := range []string{"pacehttp.cool_downs", "pacehttp.rate"} {
		if len(points[name]) == 0 {
			t.Errorf("no %s recorded; got %v", name, points)
		}
		for attrs := range points[name] {
			if !strings.Contains(attrs, "pacehttp.partition="+host) {
				t.Errorf("%s{%s}: no partition", name, attrs)
			}
		}
	}

	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans, want 1", len(ended))
	}
	var names []string
	for _, ev := range ended[0].Events() {
		names = append(names, ev.Name)
		for _, a := range ev.Attributes {
			values = append(values, a.Value.Emit())
		}
	}
	for _, want := range []string{"pacehttp.attempt", "pacehttp.retry", "pacehttp.cool-down"} {
		if !contains(names, want) {
			t.Errorf("span events %q lack %q", names, want)
		}
	}
	if n := count(names, "pacehttp.attempt"); n != 3 {
		t.Errorf("%d attempt events on the span, want 3", n)
	}

	for _, v := range values {
		if strings.Contains(v, "SECRET") || strings.Contains(v, "/v1/chat") {
			t.Errorf("attribute value %q holds the URL or a credential", v)
		}
	}
}

func contains(s []string, v string) bool { return count(s, v) > 0 }

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
