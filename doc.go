// Package pacehttp is an http.RoundTripper middleware for rate-limited APIs:
// it paces requests so they rarely meet a 429 Too Many Requests, and retries
// the ones that do, as the server asks.
//
// Most callers want New or NewClient and hand the result to any SDK that
// accepts an *http.Client:
//
//	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithMaxWait(30*time.Second))
//
// The chain New builds is two layers over the base transport:
//
//	Retry -> Pace -> base
//
// Retry decides whether and when an attempt is repeated (retry.go, with the
// rules in policy.go); Pace decides when each attempt, first or retry, may
// leave (pacing.go). Each layer is also a Middleware of its own, usable
// alone or composed with Chain.
package pacehttp
