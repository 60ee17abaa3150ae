package pacehttp

import "net/http"

// paceConfig holds the settings of the pacing layer.
// TODO(pacing): the pacer itself; until it lands, Pace passes requests through.
type paceConfig struct{}

func defaultPaceConfig() paceConfig { return paceConfig{} }

func (c *config) paceMiddleware() Middleware {
	return func(next http.RoundTripper) http.RoundTripper { return next }
}
