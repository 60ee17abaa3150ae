package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/pacehttp/pacehttp"
)

// A doer sends one request and returns the final answer, after whatever
// retries its contender makes.
type doer func(*http.Request) (*http.Response, error)

// A contender is one way of calling a rate-limited API. New builds a fresh
// client over base, the measuring transport, for one independent client of
// the scenario; state must not be shared between calls.
type contender struct {
	Name   string
	Module string // module path whose version is printed, "" for none
	Setup  string // how it is configured, for the report
	New    func(base http.RoundTripper, s scenario) doer
}

func clientDoer(c *http.Client) doer { return c.Do }

var contenders = []contender{
	{
		Name:  "no retry",
		Setup: "http.Client over the base transport",
		New: func(base http.RoundTripper, _ scenario) doer {
			return clientDoer(&http.Client{Transport: base})
		},
	},
	{
		Name:  "seed article",
		Setup: "5 attempts, 2^n s + U(0,1) s backoff, Retry-After honoured",
		New: func(base http.RoundTripper, _ scenario) doer {
			return seedRetry(&http.Client{Transport: base}, 5)
		},
	},
	{
		Name:   "go-retryablehttp",
		Module: "github.com/hashicorp/go-retryablehttp",
		Setup:  "NewClient().StandardClient(), defaults (logging off)",
		New: func(base http.RoundTripper, _ scenario) doer {
			rc := retryablehttp.NewClient()
			rc.HTTPClient.Transport = base
			// The default logger writes a line per attempt to stderr; it
			// changes no retry decision.
			rc.Logger = nil
			return clientDoer(rc.StandardClient())
		},
	},
	{
		Name:   "failsafe-go",
		Module: "github.com/failsafe-go/failsafe-go",
		Setup:  "failsafehttp.NewRetryPolicyBuilder() (Retry-After DelayFunc), 5 attempts",
		New: func(base http.RoundTripper, _ scenario) doer {
			// The builder's default is 3 attempts; 5 matches the others.
			policy := failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(5).Build()
			return clientDoer(&http.Client{Transport: failsafehttp.NewRoundTripper(base, policy)})
		},
	},
	{
		Name:   "pacehttp",
		Module: "github.com/pacehttp/pacehttp",
		Setup:  "New(base), defaults: limit unknown, adaptive",
		New: func(base http.RoundTripper, _ scenario) doer {
			return clientDoer(&http.Client{Transport: pacehttp.New(base)})
		},
	},
	{
		Name:   "pacehttp+rate",
		Module: "github.com/pacehttp/pacehttp",
		Setup:  "New(base, WithRate(rate, burst)), plus WithTokenRate when tokens are limited",
		New: func(base http.RoundTripper, s scenario) doer {
			opts := []pacehttp.Option{pacehttp.WithRate(s.Config.Rate, s.Config.Burst)}
			if s.Config.TokenRate > 0 {
				opts = append(opts, pacehttp.WithTokenRate(s.Config.TokenRate, s.Config.TokenBurst))
			}
			return clientDoer(&http.Client{Transport: pacehttp.New(base, opts...)})
		},
	},
}

// seedRetry is the pattern of the article the project started from: each
// request is tried up to attempts times; after a 429, a 5xx or a transport
// error it waits the Retry-After the server sent, else 2^n seconds plus up
// to a second of jitter (n counting retries from 0).
func seedRetry(c *http.Client, attempts int) doer {
	return func(req *http.Request) (*http.Response, error) {
		for n := 0; ; n++ {
			if n > 0 && req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				req = req.Clone(req.Context())
				req.Body = body
			}
			resp, err := c.Do(req)
			retryable := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
			if !retryable || n+1 >= attempts || req.Context().Err() != nil {
				return resp, err
			}
			wait := time.Duration(1<<n)*time.Second + time.Duration(rand.Int64N(int64(time.Second)))
			if resp != nil {
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
					wait = time.Duration(s) * time.Second
				}
				drain(resp)
			}
			if err := sleepCtx(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
