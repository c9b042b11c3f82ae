package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"kubesvc/internal/testcluster"
)

// BenchmarkAgent_PodStartup100 measures pod start latency (create → Ready observed by a
// watch) for 100 kubia pods created at once on one node, and the agent's CPU time and RSS
// with them running. Run: go test -run XXX -bench PodStartup100 -benchtime 1x.
func BenchmarkAgent_PodStartup100(b *testing.B) {
	const pods = 100
	for i := 0; i < b.N; i++ {
		w := testcluster.New(b, testcluster.Options{Nodes: []string{"node-a"}})
		node := w.Nodes()[0]
		pid, err := node.AgentPID()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		// One pod alone first: the latency without contention.
		t0 := time.Now()
		if _, err := w.Client.CoreV1().Pods("default").Create(ctx, kubiaPod("single", "node-a"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		w.WaitPod(time.Minute, "default", "single", "ready", testcluster.PodReady)
		single := time.Since(t0)
		b.ReportMetric(float64(single.Milliseconds()), "single-pod-ms")
		if err := w.Client.CoreV1().Pods("default").Delete(ctx, "single", metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuSeconds(b, pid)
		watcher, err := w.Client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		created := map[string]time.Time{}
		ready := map[string]time.Duration{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range watcher.ResultChan() {
				if ev.Type != watch.Modified && ev.Type != watch.Added {
					continue
				}
				p := ev.Object.(*corev1.Pod)
				if testcluster.PodReady(p) != nil {
					continue
				}
				mu.Lock()
				if t0, ok := created[p.Name]; ok {
					if _, seen := ready[p.Name]; !seen {
						ready[p.Name] = time.Since(t0)
					}
				}
				n := len(ready)
				mu.Unlock()
				if n == pods {
					return
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for j := 0; j < pods; j++ {
			name := fmt.Sprintf("kubia-%03d", j)
			wg.Add(1)
			go func() {
				defer wg.Done()
				mu.Lock()
				created[name] = time.Now()
				mu.Unlock()
				if _, err := w.Client.CoreV1().Pods("default").Create(ctx, kubiaPod(name, "node-a"), metav1.CreateOptions{}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		select {
		case <-done:
		case <-ctx.Done():
			b.Fatalf("only %d of %d pods ready", len(ready), pods)
		}
		all := time.Since(start)
		watcher.Stop()
		cancel()
		var lat []time.Duration
		for _, d := range ready {
			lat = append(lat, d)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		cpu := cpuSeconds(b, pid) - cpu0
		rss := rssMiB(b, pid)
		b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
		b.ReportMetric(all.Seconds(), "all-ready-s")
		b.ReportMetric(cpu, "agent-cpu-s")
		b.ReportMetric(rss, "agent-rss-MiB")
		b.Logf("%d pods: p50 %v, p99 %v, max %v, all ready after %v; agent CPU %.1fs, RSS %.0f MiB", pods, p50, p99, lat[len(lat)-1], all, cpu, rss)
		shims, shimKB := anonKiB(b, "agent\x00shim\x00")
		kubias, kubiaKB := anonKiB(b, "toolbox\x00kubia\x00")
		b.ReportMetric(shimKB/float64(max(shims, 1))/1024, "shim-anon-MiB")
		b.ReportMetric(kubiaKB/float64(max(kubias, 1))/1024, "kubia-anon-MiB")
		b.Logf("%d shims, %.1f MiB anonymous memory each; %d kubia processes, %.1f MiB each", shims, shimKB/float64(max(shims, 1))/1024, kubias, kubiaKB/float64(max(kubias, 1))/1024)
		// Idle cost: the agent's CPU over 10 s with the pods running.
		idle0 := cpuSeconds(b, pid)
		time.Sleep(10 * time.Second) //nolint:forbidigo // measuring idle CPU over a fixed window
		b.ReportMetric((cpuSeconds(b, pid)-idle0)/10*100, "agent-idle-cpu-%")
	}
}

func cpuSeconds(tb testing.TB, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// anonKiB sums RssAnon of the processes whose command line contains match.
func anonKiB(tb testing.TB, match string) (n int, kib float64) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), match) {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			var v float64
			if _, err := fmt.Sscanf(l, "RssAnon: %f kB", &v); err == nil {
				n++
				kib += v
			}
		}
	}
	return n, kib
}

func rssMiB(tb testing.TB, pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}
