package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// result is one target's measurements in one round. Times are in the unit the field names.
type result struct {
	Round    int     `json:"round"`
	Target   string  `json:"target"`
	StartupS float64 `json:"startupS"`

	CreateTotalS    float64 `json:"createTotalS"`
	CreatePerS      float64 `json:"createPerS"`
	CreateP50Ms     float64 `json:"createP50Ms"`
	CreateP99Ms     float64 `json:"createP99Ms"`
	AllocatedIPs    int     `json:"allocatedIPs"`
	SettleCreateS   float64 `json:"settleCreateS"`
	ListFullMs      float64 `json:"listFullMs"`
	ListPagedMs     float64 `json:"listPagedMs"`
	ListTableMs     float64 `json:"listTableMs"`
	WatchTotalS     float64 `json:"watchTotalS"`
	WatchP50Ms      float64 `json:"watchP50Ms"`
	WatchP99Ms      float64 `json:"watchP99Ms"`
	WatchRestarts   int     `json:"watchRestarts"`
	PatchP50Ms      float64 `json:"patchP50Ms"`
	PatchP99Ms      float64 `json:"patchP99Ms"`
	DeleteTotalS    float64 `json:"deleteTotalS"`
	DeleteP50Ms     float64 `json:"deleteP50Ms"`
	DeleteP99Ms     float64 `json:"deleteP99Ms"`
	SettleDeleteS   float64 `json:"settleDeleteS"`
	RSSLoadedMiB    float64 `json:"rssLoadedMiB"`
	RSSEndMiB       float64 `json:"rssEndMiB"`
	HWMMiB          float64 `json:"hwmMiB"`
	CPUS            float64 `json:"cpuS"`
	EtcdCPUS        float64 `json:"etcdCPUS"`
	EtcdStartupCPUS float64 `json:"etcdStartupCPUS"`
}

func (r *result) setCreate(p params, c createResult) {
	r.CreateTotalS = c.total.Seconds()
	r.CreatePerS = float64(p.services) / c.total.Seconds()
	r.CreateP50Ms, r.CreateP99Ms = ms(percentile(c.lat, 50)), ms(percentile(c.lat, 99))
	r.AllocatedIPs = c.ips
}

func (r result) line() string {
	return fmt.Sprintf("round %d %-14s create %.1fs (%.0f/s, p50 %.1fms p99 %.1fms) list %.0f/%.0f/%.0fms "+
		"idle +%.0fs +%.0fs watch %.2fs (p50 %.1fms p99 %.1fms, %d restarts) delete %.1fs (p50 %.1fms p99 %.1fms) rss %.0f/%.0f hwm %.0f MiB cpu %.1fs etcd %.1fs",
		r.Round, r.Target, r.CreateTotalS, r.CreatePerS, r.CreateP50Ms, r.CreateP99Ms,
		r.ListFullMs, r.ListPagedMs, r.ListTableMs, r.SettleCreateS, r.SettleDeleteS, r.WatchTotalS, r.WatchP50Ms, r.WatchP99Ms, r.WatchRestarts,
		r.DeleteTotalS, r.DeleteP50Ms, r.DeleteP99Ms, r.RSSLoadedMiB, r.RSSEndMiB, r.HWMMiB, r.CPUS, r.EtcdCPUS)
}

// metric is one row of the summary table.
type metric struct {
	name   string
	unit   string
	higher bool // higher is better (throughput); the ratio is still ours/kube
	get    func(result) float64
}

var metrics = []metric{
	{name: "startup to ready", unit: "s", get: func(r result) float64 { return r.StartupS }},
	{name: "create 10k: total", unit: "s", get: func(r result) float64 { return r.CreateTotalS }},
	{name: "create: throughput", unit: "/s", higher: true, get: func(r result) float64 { return r.CreatePerS }},
	{name: "create: p50", unit: "ms", get: func(r result) float64 { return r.CreateP50Ms }},
	{name: "create: p99", unit: "ms", get: func(r result) float64 { return r.CreateP99Ms }},
	{name: "idle again after creates", unit: "s", get: func(r result) float64 { return r.SettleCreateS }},
	{name: "list all, unpaginated", unit: "ms", get: func(r result) float64 { return r.ListFullMs }},
	{name: "list all, limit=500 pages", unit: "ms", get: func(r result) float64 { return r.ListPagedMs }},
	{name: "list all, limit=500 as Table", unit: "ms", get: func(r result) float64 { return r.ListTableMs }},
	{name: "watch: all saw all updates", unit: "s", get: func(r result) float64 { return r.WatchTotalS }},
	{name: "watch: delivery p50", unit: "ms", get: func(r result) float64 { return r.WatchP50Ms }},
	{name: "watch: delivery p99", unit: "ms", get: func(r result) float64 { return r.WatchP99Ms }},
	{name: "watch: server-closed watches", unit: "n", get: func(r result) float64 { return float64(r.WatchRestarts) }},
	{name: "patch (under fan-out): p50", unit: "ms", get: func(r result) float64 { return r.PatchP50Ms }},
	{name: "patch (under fan-out): p99", unit: "ms", get: func(r result) float64 { return r.PatchP99Ms }},
	{name: "delete 10k: total", unit: "s", get: func(r result) float64 { return r.DeleteTotalS }},
	{name: "delete: p50", unit: "ms", get: func(r result) float64 { return r.DeleteP50Ms }},
	{name: "delete: p99", unit: "ms", get: func(r result) float64 { return r.DeleteP99Ms }},
	{name: "idle again after deletes", unit: "s", get: func(r result) float64 { return r.SettleDeleteS }},
	{name: "RSS with 10k Services + watchers", unit: "MiB", get: func(r result) float64 { return r.RSSLoadedMiB }},
	{name: "RSS at end (VmRSS)", unit: "MiB", get: func(r result) float64 { return r.RSSEndMiB }},
	{name: "peak RSS (VmHWM)", unit: "MiB", get: func(r result) float64 { return r.HWMMiB }},
	{name: "server CPU, phases 1-4 + settling", unit: "s", get: func(r result) float64 { return r.CPUS }},
	{name: "etcd CPU, same span", unit: "s", get: func(r result) float64 { return r.EtcdCPUS }},
}

// printTable prints, per metric, each target's median over the rounds with its range, and the
// ratio of the first target's median to the second's.
func printTable(w io.Writer, all []result, targets []string) {
	fmt.Fprintf(w, "%-34s", "metric (median of rounds, [min-max])")
	for _, t := range targets {
		fmt.Fprintf(w, " | %-26s", t)
	}
	if len(targets) == 2 {
		fmt.Fprintf(w, " | %s/%s", targets[0], targets[1])
	}
	fmt.Fprintln(w)
	for _, m := range metrics {
		fmt.Fprintf(w, "%-34s", m.name+" ("+m.unit+")")
		var meds []float64
		for _, t := range targets {
			var vs []float64
			for _, r := range all {
				if r.Target == t {
					vs = append(vs, m.get(r))
				}
			}
			if len(vs) == 0 {
				fmt.Fprintf(w, " | %-26s", "-")
				meds = append(meds, 0)
				continue
			}
			med := medianF(vs)
			meds = append(meds, med)
			fmt.Fprintf(w, " | %-26s", fmt.Sprintf("%s [%s-%s]", num(med), num(slices.Min(vs)), num(slices.Max(vs))))
		}
		if len(meds) == 2 && meds[1] != 0 {
			note := ""
			if m.higher {
				note = " (>1 better)"
			}
			fmt.Fprintf(w, " | %.2f%s", meds[0]/meds[1], note)
		}
		fmt.Fprintln(w)
	}
	rounds := map[string]int{}
	for _, r := range all {
		rounds[r.Target]++
	}
	fmt.Fprintf(w, "rounds completed: %v\n", rounds)
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func medianF(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

// percentile returns the q-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q/100*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
