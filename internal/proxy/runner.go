package proxy

import (
	"context"
	"time"
)

// Runner runs a function from one goroutine, at most once per MinInterval, at least once per
// MaxInterval, and as soon as allowed after Run is called (kube's BoundedFrequencyRunner,
// without its burst). A failed run is retried after RetryInterval. The zero value is not
// usable: use NewRunner.
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

// Run asks for a run as soon as MinInterval allows. It never blocks.
func (r *Runner) Run() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Loop runs until ctx is done. The first run happens as soon as Run is first called or
// MaxInterval has passed.
func (r *Runner) Loop(ctx context.Context) {
	timer := time.NewTimer(r.max)
	defer timer.Stop()
	var last time.Time
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
				t = last.Add(r.min)
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
			if err := r.fn(); err != nil {
				retryAt = time.Now().Add(r.retryPeriod)
			}
			continue
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
