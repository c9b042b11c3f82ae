package servertest

import (
	"testing"
	"time"
)

// PollInterval is how often WaitFor checks its condition.
const PollInterval = 20 * time.Millisecond

// WaitFor polls cond until it returns nil or timeout passes; then it fails the test with what
// and cond's last error. It never sleeps longer than PollInterval between checks.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Poll(timeout, cond); err != nil {
		tb.Fatalf("%s: not true after %v: %v", what, timeout, err)
	}
}

// Poll polls cond until it returns nil (Poll returns nil) or timeout passes (Poll returns
// cond's last error).
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		<-t.C
	}
}
