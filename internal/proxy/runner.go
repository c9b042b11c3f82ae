package proxy

import (
	"context"
	"time"
)

// Runner runs a function from one goroutine: as soon as allowed after Run is called, at
// least once per MaxInterval, and again RetryInterval after a failed run (kube's
// BoundedFrequencyRunner). Changes that arrive while a run is in progress are coalesced into
// one next run.
//
// How soon a requested run may start after the previous one:
//   - MinInterval > 0: not before MinInterval after the previous run started (kube-proxy's
//     --min-sync-period);
//   - MinInterval == 0 (adaptive): not before the previous run's own duration has passed again
//     after it ended, so syncing takes at most half of the loop's time under any churn, and
//     a change after a quiet spell is applied at once. Partial syncs cost in proportion to
//     what changed (milliseconds), so this applies a single change within one sync's time
//     instead of waiting out a fixed second.
//
// The zero value is not usable: use NewRunner.
type Runner struct {
	fn                    func() error
	min, max, retryPeriod time.Duration
	kick                  chan struct{}
}

// NewRunner returns a runner of fn; it panics on intervals that cannot work (programmer error).
func NewRunner(fn func() error, minInterval, maxInterval, retry time.Duration) *Runner {
	if minInterval < 0 || maxInterval <= 0 || minInterval > maxInterval || retry <= 0 {
		panic("proxy: NewRunner needs 0 <= min <= max and retry > 0")
	}
	return &Runner{fn: fn, min: minInterval, max: maxInterval, retryPeriod: retry, kick: make(chan struct{}, 1)}
}

// Run asks for a run as soon as the interval rules allow. It never blocks.
func (r *Runner) Run() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// earliest is when a requested run may start after a run that started at start and took d.
func (r *Runner) earliest(start time.Time, d time.Duration) time.Time {
	if r.min > 0 {
		return start.Add(r.min)
	}
	return start.Add(2 * d)
}

// Loop runs until ctx is done. The first run happens as soon as Run is first called or
// MaxInterval has passed.
func (r *Runner) Loop(ctx context.Context) {
	timer := time.NewTimer(r.max)
	defer timer.Stop()
	var last time.Time // start of the last run
	var lastDur time.Duration
	started := time.Now()
	pending := false
	var retryAt time.Time
	for {
		now := time.Now()
		next := started.Add(r.max)
		if !last.IsZero() {
			next = last.Add(r.max)
		}
		if pending {
			t := now
			if !last.IsZero() {
				t = r.earliest(last, lastDur)
			}
			if t.Before(next) {
				next = t
			}
		}
		if !retryAt.IsZero() && retryAt.Before(next) {
			next = retryAt
		}
		if d := next.Sub(now); d <= 0 {
			pending, retryAt, last = false, time.Time{}, now
			err := r.fn()
			lastDur = time.Since(last)
			if err != nil {
				retryAt = time.Now().Add(r.retryPeriod)
			}
			continue // a request that came in during the run waits in kick
		} else {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			pending = true
		case <-timer.C:
		}
	}
}
