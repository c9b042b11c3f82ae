package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
)

// result is one proxy's measurements at one Service count in one round.
type result struct {
	Services int    `json:"services"`
	Round    int    `json:"round"`
	Proxy    string `json:"proxy"`

	// (b) full sync: process start → first successful connect to the last-created Service.
	StartupS        float64 `json:"startupS"`
	StartupAttempts int     `json:"startupAttempts"`
	FirstSyncS      float64 `json:"firstSyncS"` // the proxy's own metric for its first sync(s); -1 if none
	StartupCPUS     float64 `json:"startupCPUS"`
	RSSSyncedMiB    float64 `json:"rssSyncedMiB"`
	IdleAfterS      float64 `json:"idleAfterS"` // after the first connect, until < 5 % CPU
	IdleCPUPct      float64 `json:"idleCPUPct"`

	// (c) connect round trip through the ClusterIP and directly to the pods.
	ClusterIPP50Us float64 `json:"clusterIPP50Us"`
	ClusterIPP99Us float64 `json:"clusterIPP99Us"`
	DirectP50Us    float64 `json:"directP50Us"`
	DirectP99Us    float64 `json:"directP99Us"`

	// (a) +1 Service: create Service+slice → first successful connect.
	Plus1Ms        []float64 `json:"plus1Ms"`
	Plus1SyncMs    []float64 `json:"plus1SyncMs"`    // mean sync duration during each sample (metric)
	Plus1NetProgMs []float64 `json:"plus1NetProgMs"` // network_programming_duration (metric)
	Plus1CPUMs     float64   `json:"plus1CPUMs"`     // proxy CPU per +1 sample (create, sync, delete, sync, gap)
	// Plus1Dropped counts +1 connect attempts that timed out (their SYN was dropped, not
	// refused) while the Service was being programmed.
	Plus1Dropped int `json:"plus1Dropped"`

	RSSEndMiB    float64 `json:"rssEndMiB"`
	HWMMiB       float64 `json:"hwmMiB"`
	RulesetLines int     `json:"rulesetLines,omitempty"`
	Load         string  `json:"load"` // load average when the result was taken
}

// params are the measurement settings.
type params struct {
	Levels      []int         `json:"levels"`
	Rounds      int           `json:"rounds"`
	Proxies     []string      `json:"proxies"`
	Plus1       int           `json:"plus1Samples"`
	Plus1Gap    time.Duration `json:"plus1Gap"`
	Latency     int           `json:"latencySamples"`
	Poll        time.Duration `json:"poll"`
	SyncTimeout time.Duration `json:"syncTimeout"`
	Parallel    int           `json:"parallel"`
	Pods        int           `json:"pods"`
	APIServer   string        `json:"apiServer"`
	Ruleset     bool          `json:"rulesetSize"`
	MinSync     string        `json:"minSyncPeriod,omitempty"`
	Runner      string        `json:"kubesvcRunner"`
}

// measureProxy runs one proxy from a clean node ruleset through (b), (c) and (a), then stops
// it and flushes the ruleset again.
func measureProxy(ctx context.Context, p params, l *load, cfg proxyConfig, name string, round, run int) (*result, error) {
	r := &result{Services: l.count, Round: round, Proxy: name, FirstSyncS: -1}
	if err := flushRuleset(); err != nil {
		return nil, err
	}
	last := l.lastAddr()
	if _, err := connectRTT(last, probeTimeout); err == nil {
		return nil, fmt.Errorf("%s connects before any proxy runs: the world is not clean", last)
	}
	proc, err := startProxy(name, cfg, run)
	if err != nil {
		return nil, err
	}
	defer func() {
		proc.stop()
		if err := flushRuleset(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		}
	}()

	// (b) Full sync. The proxy's first sync metric is read by a poller so that later syncs
	// do not dilute it.
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	var (
		mu        sync.Mutex
		firstSync promSample
		wg        sync.WaitGroup
	)
	seen := func() promSample { mu.Lock(); defer mu.Unlock(); return firstSync }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pollCtx.Err() == nil {
			if m, err := proc.scrape(pollCtx, mSync, mSyncFull); err == nil && m[mSync].count > 0 {
				mu.Lock()
				defer mu.Unlock()
				firstSync = m[mSyncFull]
				if firstSync.count == 0 {
					firstSync = m[mSync]
				}
				return
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, p.SyncTimeout)
	ready, attempts, _, err := waitConnect(sctx, last, p.Poll)
	cancel()
	if err != nil {
		stopPoll()
		wg.Wait()
		if xerr := proc.exited(); xerr != nil {
			return nil, xerr
		}
		return nil, fmt.Errorf("%s: first connect to %s: %w (log %s)", name, last, err, proc.logPath)
	}
	r.StartupS = ready.Sub(proc.started).Seconds()
	r.StartupAttempts = attempts
	// Give the poller a moment to see the metric of the sync that made the connect work
	// (by then kube-proxy has also reaped its nft process, whose CPU counts as its own).
	waitUntil(ctx, 10*time.Second, func() bool { return seen().count > 0 })
	stopPoll()
	wg.Wait()
	if fs := seen(); fs.count > 0 {
		r.FirstSyncS = fs.sum / fs.count
	}
	st, err := proc.stat()
	if err != nil {
		return nil, err
	}
	r.StartupCPUS = st.cpu.Seconds()
	r.RSSSyncedMiB = mib(st.rss)

	idle, _ := proc.waitIdle(ctx, time.Minute)
	r.IdleAfterS = idle.Seconds()
	st0, _ := proc.stat()
	sleepCtx(ctx, 3*time.Second)
	st1, _ := proc.stat()
	r.IdleCPUPct = 100 * (st1.cpu - st0.cpu).Seconds() / 3

	// (c) Connect round trips, ClusterIP and direct interleaved.
	viaVIP, direct, err := latencySamples(p.Latency, []netip.AddrPort{last}, l.podAddrs())
	if err != nil {
		return nil, fmt.Errorf("%s: latency: %w", name, err)
	}
	r.ClusterIPP50Us, r.ClusterIPP99Us = us(percentile(viaVIP, 50)), us(percentile(viaVIP, 99))
	r.DirectP50Us, r.DirectP99Us = us(percentile(direct, 50)), us(percentile(direct, 99))

	// (a) +1 Service.
	stA, _ := proc.stat()
	for k := 0; k < p.Plus1; k++ {
		if err := plusOne(ctx, p, l, proc, r, fmt.Sprintf("plus-%d-%d-%d", l.count, run, k)); err != nil {
			if xerr := proc.exited(); xerr != nil {
				return nil, xerr
			}
			return nil, fmt.Errorf("%s: +1 sample %d: %w", name, k, err)
		}
	}
	stB, _ := proc.stat()
	if p.Plus1 > 0 {
		r.Plus1CPUMs = float64((stB.cpu - stA.cpu).Milliseconds()) / float64(p.Plus1)
	}
	r.RSSEndMiB, r.HWMMiB = mib(stB.rss), mib(stB.hwm)
	if p.Ruleset && round == 0 {
		r.RulesetLines = rulesetSize()
	}
	if err := proc.exited(); err != nil {
		return nil, err
	}
	return r, nil
}

// plusOne creates one Service with its slice (endpoints: the pods), waits until a connect
// through its ClusterIP works, reads the proxy's metrics, then deletes it and waits until the
// proxy has removed it.
func plusOne(ctx context.Context, p params, l *load, proc *proxyProc, r *result, name string) error {
	sleepCtx(ctx, p.Plus1Gap)
	m0, err := proc.scrape(ctx, mSync, mNetProg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ns := nsName(0)
	t0 := time.Now()
	ip, err := createService(ctx, l.cs, ns, name, l.realAddrs(), podPort, t0)
	if err != nil {
		return err
	}
	addr := netip.AddrPortFrom(ip, servicePort)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	ok, _, timeouts, err := waitConnect(cctx, addr, p.Poll)
	cancel()
	if err != nil {
		return err
	}
	r.Plus1Dropped += timeouts
	r.Plus1Ms = append(r.Plus1Ms, ms(ok.Sub(t0)))
	var m1 map[string]promSample
	waitUntil(ctx, 3*time.Second, func() bool {
		m1, err = proc.scrape(ctx, mSync, mNetProg)
		return err == nil && m1[mSync].count > m0[mSync].count && m1[mNetProg].count > m0[mNetProg].count
	})
	if d := delta(m0, m1, mSync); d >= 0 {
		r.Plus1SyncMs = append(r.Plus1SyncMs, d*1000)
	}
	if d := delta(m0, m1, mNetProg); d >= 0 {
		r.Plus1NetProgMs = append(r.Plus1NetProgMs, d*1000)
	}
	if err := deleteService(ctx, l.cs, ns, name); err != nil {
		return err
	}
	cctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return waitRefused(cctx, addr, 5*time.Millisecond)
}

// delta is the mean of the observations of histogram name between two scrapes, -1 if none.
func delta(m0, m1 map[string]promSample, name string) float64 {
	if m1 == nil {
		return -1
	}
	dc := m1[name].count - m0[name].count
	if dc <= 0 {
		return -1
	}
	return (m1[name].sum - m0[name].sum) / dc
}

func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
