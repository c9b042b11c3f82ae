package proxy

import (
	"context"
	"sync"
	"testing"
	"time"
)

// runRecorder runs a Runner whose function records its start times and takes work each run.
type runRecorder struct {
	mu     sync.Mutex
	starts []time.Time
	work   time.Duration
	ran    chan struct{}
}

func startRunner(t *testing.T, minInterval, work time.Duration) (*Runner, *runRecorder) {
	t.Helper()
	rec := &runRecorder{work: work, ran: make(chan struct{}, 100)}
	r := NewRunner(func() error {
		rec.mu.Lock()
		rec.starts = append(rec.starts, time.Now())
		rec.mu.Unlock()
		time.Sleep(rec.work)
		rec.ran <- struct{}{}
		return nil
	}, minInterval, time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Loop(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, rec
}

func (rec *runRecorder) wait(t *testing.T, n int) []time.Time {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-rec.ran:
		case <-time.After(30 * time.Second):
			t.Fatalf("run %d of %d did not happen", i+1, n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]time.Time(nil), rec.starts...)
}

// PX-S-01: with a minimum interval, a second request waits until MinInterval after the
// previous run started; a request after a quiet spell runs at once.
func TestRunner_MinInterval(t *testing.T) {
	r, rec := startRunner(t, 300*time.Millisecond, 0)
	kicked := time.Now()
	r.Run()
	starts := rec.wait(t, 1)
	if d := starts[0].Sub(kicked); d > 250*time.Millisecond {
		t.Errorf("first run %s after the request, want at once (well before the 300ms interval)", d)
	}
	r.Run()
	starts = rec.wait(t, 1)
	if gap := starts[1].Sub(starts[0]); gap < 300*time.Millisecond {
		t.Errorf("second run %s after the first, want >= 300ms (min interval)", gap)
	}
}

// Adaptive mode (MinInterval 0): requests during a run are coalesced into one next run,
// which starts no sooner than the previous run's duration after it ended.
func TestRunner_Adaptive(t *testing.T) {
	r, rec := startRunner(t, 0, 100*time.Millisecond)
	r.Run()
	for i := 0; i < 5; i++ { // during the first run
		time.Sleep(10 * time.Millisecond)
		r.Run()
	}
	starts := rec.wait(t, 2)
	if gap := starts[1].Sub(starts[0]); gap < 200*time.Millisecond {
		t.Errorf("second run %s after the first (which took 100ms), want >= 200ms", gap)
	}
	select {
	case <-rec.ran:
		t.Fatal("a third run: requests made during one run must be coalesced into one next run")
	case <-time.After(500 * time.Millisecond):
	}
	// A request after a quiet spell: no wait at all beyond the rule.
	rec.mu.Lock()
	rec.work = 0
	rec.mu.Unlock()
	kicked := time.Now()
	r.Run()
	starts = rec.wait(t, 1)
	if d := starts[2].Sub(kicked); d > 250*time.Millisecond {
		t.Errorf("run %s after a request in a quiet spell, want at once", d)
	}
}
