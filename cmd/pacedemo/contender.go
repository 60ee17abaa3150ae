package main

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// A contender is one way of calling a rate-limited API. New builds one
// independent client of the scenario over base, the runner's measuring
// transport; it returns nil when the contender cannot be set up for the
// scenario (pacehttp+rate where the limit is not a rate it can be told).
type contender struct {
	Name   string
	Module string // module path whose version is printed, "" for none
	Setup  string // how it is configured, for the report
	New    func(base http.RoundTripper, s pacetest.Scenario) http.RoundTripper
}

var contenders = []contender{
	{
		Name:  "no retry",
		Setup: "the base transport alone",
		New:   func(base http.RoundTripper, _ pacetest.Scenario) http.RoundTripper { return base },
	},
	{
		Name:  "seed article",
		Setup: "pacetest.NaiveRetry: 5 attempts, Retry-After honoured, else 2^n s + U(0,1) s",
		New: func(base http.RoundTripper, _ pacetest.Scenario) http.RoundTripper {
			return pacetest.NaiveRetry(base, 5)
		},
	},
	{
		Name:   "go-retryablehttp",
		Module: "github.com/hashicorp/go-retryablehttp",
		Setup:  "NewClient() as a RoundTripper, defaults (logging off)",
		New: func(base http.RoundTripper, _ pacetest.Scenario) http.RoundTripper {
			rc := retryablehttp.NewClient()
			rc.HTTPClient.Transport = base
			// The default logger writes a line per attempt to stderr; it
			// changes no retry decision.
			rc.Logger = nil
			return &retryablehttp.RoundTripper{Client: rc}
		},
	},
	{
		Name:   "failsafe-go",
		Module: "github.com/failsafe-go/failsafe-go",
		Setup:  "failsafehttp.NewRetryPolicyBuilder() (Retry-After DelayFunc), 5 attempts",
		New: func(base http.RoundTripper, _ pacetest.Scenario) http.RoundTripper {
			// The builder's default is 3 attempts; 5 matches the others.
			policy := failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(5).Build()
			return failsafehttp.NewRoundTripper(base, policy)
		},
	},
	{
		Name:   "pacehttp",
		Module: "github.com/pacehttp/pacehttp",
		Setup:  "New(base), defaults: the limit is learned (told it in scenarios that state it)",
		New: func(base http.RoundTripper, s pacetest.Scenario) http.RoundTripper {
			if s.Stated {
				return pacehttp.New(base, statedOptions(s)...)
			}
			return pacehttp.New(base)
		},
	},
	{
		Name:   "pacehttp+rate",
		Module: "github.com/pacehttp/pacehttp",
		Setup:  "New(base, WithRate/WithTokenRate/WithConcurrency): told the server's limit",
		New: func(base http.RoundTripper, s pacetest.Scenario) http.RoundTripper {
			opts := statedOptions(s)
			if opts == nil {
				return nil
			}
			return pacehttp.New(base, opts...)
		},
	},
}

// statedOptions tells pacehttp the scenario's limits as it can take them:
// a rate and burst, a token rate, a concurrency cap. A window's quota is
// told as a steady rate without a burst: a bucket as large as the quota
// would refill while the window stays closed. Nil when the limit is none
// of these, or differs per model.
func statedOptions(s pacetest.Scenario) []pacehttp.Option {
	cfg := s.Server
	if len(cfg.Models) > 0 {
		return nil
	}
	var opts []pacehttp.Option
	switch {
	case cfg.Rate > 0:
		opts = append(opts, pacehttp.WithRate(cfg.Rate, max(cfg.Burst, 1)))
	case cfg.Window > 0 && cfg.Quota > 0:
		opts = append(opts, pacehttp.WithRate(float64(cfg.Quota)/cfg.Window.Seconds(), 1))
	}
	if cfg.TokenRate > 0 {
		opts = append(opts, pacehttp.WithTokenRate(cfg.TokenRate, max(cfg.TokenBurst, 1)))
	}
	if cfg.MaxInFlight > 0 {
		opts = append(opts, pacehttp.WithConcurrency(cfg.MaxInFlight))
	}
	return opts
}

func contenderNames() []string {
	var ns []string
	for _, c := range contenders {
		ns = append(ns, c.Name)
	}
	return ns
}

// selectContenders returns the contenders named in a comma-separated list,
// all of them for an empty one.
func selectContenders(list string) ([]contender, error) {
	if list == "" {
		return contenders, nil
	}
	var cs []contender
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, c := range contenders {
			if strings.EqualFold(c.Name, name) {
				cs = append(cs, c)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown contender %q; the contenders are %s", name, quoteAll(contenderNames()))
		}
	}
	return cs, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// moduleVersion reports the version of module path linked into this binary,
// as the build recorded it, with the replacement if there is one.
func moduleVersion(bi *debug.BuildInfo, path string) string {
	if bi == nil || path == "" {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path != path {
			continue
		}
		if m.Replace != nil {
			if m.Replace.Version == "" {
				return "local " + m.Replace.Path
			}
			return m.Replace.Version
		}
		if m.Version == "(devel)" {
			return "(devel, this repository)" // a go.work workspace module
		}
		return m.Version
	}
	return ""
}
