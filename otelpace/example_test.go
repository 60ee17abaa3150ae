package otelpace_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"github.com/pacehttp/pacehttp/otelpace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Record a client's attempts and retries as OpenTelemetry metrics. A real
// program passes its MeterProvider (or nil for the global one); here a
// ManualReader shows what was recorded.
func ExampleNewHook() {
	api := pacetest.NewScripted(pacetest.Status(503), pacetest.OK(`{}`))
	defer api.Close()

	reader := sdkmetric.NewManualReader()
	hook, err := otelpace.NewHook(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: pacehttp.New(api.Transport(),
		pacehttp.WithHook(hook), pacehttp.WithBackoff(time.Millisecond, time.Millisecond))}
	resp, err := client.Get("http://api.test/v1/models")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, p := range sum.DataPoints {
				fmt.Print(m.Name, " ", p.Value)
				if reason, ok := p.Attributes.Value(otelpace.KeyReason); ok {
					fmt.Print(" ", reason.Emit())
				}
				fmt.Println()
			}
		}
	}
	// Output:
	// pacehttp.attempts 2
	// pacehttp.retries 1 status 503
}
