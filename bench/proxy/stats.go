package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) && x >= 0 {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// row is one line of a summary table: a value per result.
type row struct {
	name, unit string
	get        func(*result) float64
}

var rows = []row{
	{"full sync: start → first connect", "s", func(r *result) float64 { return r.StartupS }},
	{"full sync: first sync (metric)", "s", func(r *result) float64 { return r.FirstSyncS }},
	{"full sync: CPU until synced", "s", func(r *result) float64 { return r.StartupCPUS }},
	{"+1 Service: create → connect (median)", "ms", func(r *result) float64 { return median(r.Plus1Ms) }},
	{"+1 Service: sync (metric, median)", "ms", func(r *result) float64 { return median(r.Plus1SyncMs) }},
	{"+1 Service: network programming (metric)", "ms", func(r *result) float64 { return median(r.Plus1NetProgMs) }},
	{"+1 Service: dropped SYNs (all samples)", "", func(r *result) float64 { return float64(r.Plus1Dropped) }},
	{"+1 Service: CPU per sample", "ms", func(r *result) float64 { return r.Plus1CPUMs }},
	{"connect via ClusterIP p50", "µs", func(r *result) float64 { return r.ClusterIPP50Us }},
	{"connect via ClusterIP p99", "µs", func(r *result) float64 { return r.ClusterIPP99Us }},
	{"connect direct to pod p50", "µs", func(r *result) float64 { return r.DirectP50Us }},
	{"connect direct to pod p99", "µs", func(r *result) float64 { return r.DirectP99Us }},
	{"ClusterIP / direct p50", "×", func(r *result) float64 { return r.ClusterIPP50Us / r.DirectP50Us }},
	{"idle CPU after sync", "%", func(r *result) float64 { return r.IdleCPUPct }},
	{"RSS after full sync", "MiB", func(r *result) float64 { return r.RSSSyncedMiB }},
	{"RSS at end", "MiB", func(r *result) float64 { return r.RSSEndMiB }},
	{"peak RSS (VmHWM)", "MiB", func(r *result) float64 { return r.HWMMiB }},
	{"nft ruleset lines", "", func(r *result) float64 {
		if r.RulesetLines == 0 {
			return math.NaN()
		}
		return float64(r.RulesetLines)
	}},
}

// printTables prints, per Service count, the median over rounds of every row for every proxy
// and the ratio kubesvc / kube-proxy, as a Markdown table.
func printTables(w io.Writer, p params, results []*result) {
	for _, n := range p.Levels {
		fmt.Fprintf(w, "\n### %d Services × %d endpoints (median of %d rounds)\n\n", n, endpointsPerService, p.Rounds)
		hdr := "| metric |"
		sep := "|---|"
		for _, px := range p.Proxies {
			hdr += " " + px + " |"
			sep += "---|"
		}
		ratio := len(p.Proxies) == 2
		if ratio {
			hdr += " ratio " + p.Proxies[1] + "/" + p.Proxies[0] + " |"
			sep += "---|"
		}
		fmt.Fprintln(w, hdr)
		fmt.Fprintln(w, sep)
		for _, rw := range rows {
			var vals []float64
			line := "| " + rw.name
			if rw.unit != "" {
				line += " (" + rw.unit + ")"
			}
			line += " |"
			for _, px := range p.Proxies {
				var xs []float64
				for _, r := range results {
					if r.Services == n && r.Proxy == px {
						xs = append(xs, rw.get(r))
					}
				}
				v := median(xs)
				vals = append(vals, v)
				line += " " + fmtVal(v) + " " + spread(xs) + " |"
			}
			if ratio {
				line += " " + fmtVal(vals[1]/vals[0]) + " |"
			}
			fmt.Fprintln(w, strings.ReplaceAll(line, "  ", " "))
		}
	}
}

// spread is "[min–max]" of the valid values when there are several.
func spread(xs []float64) string {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) && x >= 0 {
			s = append(s, x)
		}
	}
	if len(s) < 2 {
		return ""
	}
	return "[" + fmtVal(slices.Min(s)) + "–" + fmtVal(slices.Max(s)) + "]"
}

func fmtVal(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// line is a one-line summary of one result, printed as the run goes.
func (r *result) line() string {
	return fmt.Sprintf("%5d svc round %d %-10s full sync %.2fs (metric %.3fs, cpu %.2fs, rss %.0f MiB) +1 %.1fms (sync %.1fms, netprog %.1fms, cpu %.0fms) connect vip %.0f/%.0fµs direct %.0f/%.0fµs idle %.1f%% hwm %.0f MiB",
		r.Services, r.Round, r.Proxy, r.StartupS, r.FirstSyncS, r.StartupCPUS, r.RSSSyncedMiB,
		median(r.Plus1Ms), median(r.Plus1SyncMs), median(r.Plus1NetProgMs), r.Plus1CPUMs,
		r.ClusterIPP50Us, r.ClusterIPP99Us, r.DirectP50Us, r.DirectP99Us, r.IdleCPUPct, r.HWMMiB)
}
