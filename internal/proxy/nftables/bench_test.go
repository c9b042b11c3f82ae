package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns/netnstest"
)

// benchSnapshot is n ClusterIP Services with eps endpoints each (10.96.0.0/12 and
// 10.244.0.0/16 numbering).
func benchSnapshot(n, eps int) *proxy.Snapshot {
	var sts []*proxy.ServiceState
	for i := 0; i < n; i++ {
		st := svc(fmt.Sprintf("s%d", i), netip.AddrFrom4([4]byte{10, 96 + byte(i>>16), byte(i >> 8), byte(i)}).String(), 80)
		for j := 0; j < eps; j++ {
			k := i*eps + j
			st.Endpoints = append(st.Endpoints, proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 244, byte(k >> 8), byte(k)}), Port: 8080,
				Ready: true, Serving: true, NodeName: "node2"})
		}
		sts = append(sts, st)
	}
	return snapshot(sts...)
}

// benchSizes are 1k and 10k Services, or $BENCH_SERVICES (e.g. "100,300").
func benchSizes() []int {
	env := os.Getenv("BENCH_SERVICES")
	if env == "" {
		return []int{1000, 10000}
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

func benchProxier(b *testing.B) *Proxier {
	ns := netnstest.New(b)
	p, err := New(Config{NetNS: ns})
	must(b, err)
	b.Cleanup(func() { _ = p.Cleanup(); _ = p.Close() })
	return p
}

// BenchmarkSyncFull is a full sync (NFT-S-01) at n Services × 10 endpoints (issue goal at
// 10k: ≤ 2 s).
func BenchmarkSyncFull(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p := benchProxier(b)
			snap := benchSnapshot(n, 10)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				must(b, p.Sync(context.Background(), snap, nil, true))
				if os.Getenv("BENCH_VERBOSE") != "" {
					b.Logf("sync %d: kernel %s", i, p.tr.kernel)
				}
			}
			b.ReportMetric(float64(p.LastOps()), "ops/sync")
			b.ReportMetric(float64(p.tr.kernel.Milliseconds()), "kernel-ms/sync")
		})
	}
}

// BenchmarkSyncAddOne programs one more Service with n present (incremental sync, NFT-S-02;
// issue goal at 10k: ≤ 10 ms). Each iteration adds a Service and removes it again (two syncs).
func BenchmarkSyncAddOne(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p := benchProxier(b)
			snap := benchSnapshot(n, 10)
			must(b, p.Sync(context.Background(), snap, nil, true))
			extra := svc("extra", "10.100.0.1", 80)
			for j := 0; j < 10; j++ {
				extra.Endpoints = append(extra.Endpoints, proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 245, 0, byte(j)}), Port: 8080, Ready: true, Serving: true})
			}
			proxy.Categorize(extra)
			changed := sets.New(extra.Name)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snap.Services[extra.Name] = extra
				start := time.Now()
				must(b, p.Sync(context.Background(), snap, changed, false))
				add, addK := time.Since(start), p.tr.kernel
				delete(snap.Services, extra.Name)
				start = time.Now()
				must(b, p.Sync(context.Background(), snap, changed, false))
				if os.Getenv("BENCH_VERBOSE") != "" {
					b.Logf("add %s (kernel %s), delete %s (kernel %s)", add, addK, time.Since(start), p.tr.kernel)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N)/1e6, "ms/sync")
			b.ReportMetric(float64(p.tr.kernel.Microseconds())/1e3, "kernel-ms/sync")
		})
	}
}
