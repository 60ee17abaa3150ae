package redislimit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks, with goleak, that no test leaves a goroutine behind: the
// listener ends at Close, every call at its timeout.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
