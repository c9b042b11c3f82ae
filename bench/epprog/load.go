package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"

	"kubesvc/internal/controller/endpointtest"
)

// result is one target's measurement.
type result struct {
	Target    string        `json:"target"`
	Endpoints int           `json:"endpoints"`
	Setup     time.Duration `json:"setup"`  // creating nodes, namespaces, Services and pods
	Steady    time.Duration `json:"steady"` // from the last pod write until every endpoint is Ready in a slice
	Changes   int           `json:"changes"`
	Observed  int           `json:"observed"`
	Missed    int           `json:"missed"` // not seen within the drain time
	P50       time.Duration `json:"p50"`
	P90       time.Duration `json:"p90"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
	Mean      time.Duration `json:"mean"`
}

// syncCounts returns this process's endpointslice_controller_syncs counter by result (the
// in-process kubesvc's EndpointSlice controller).
func syncCounts() map[string]float64 {
	out := map[string]float64{}
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "endpoint_slice_controller_syncs" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// cpuProfile is the -cpuprofile flag.
var cpuProfile string

const managedBy = discovery.LabelManagedBy + "=endpointslice-controller.k8s.io"

type podRef struct{ ns, name string }

func measure(ctx context.Context, tg *target, p params) (*result, error) {
	rc := rest.CopyConfig(tg.config)
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	res := &result{Target: tg.name, Endpoints: p.Services * p.PodsPerService}
	t0 := time.Now()
	pods, err := setup(ctx, cs, tg, p)
	if err != nil {
		return nil, err
	}
	res.Setup = time.Since(t0)
	t1 := time.Now()
	rv, err := waitReady(ctx, cs, res.Endpoints, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	res.Steady = time.Since(t1)
	fmt.Fprintf(os.Stderr, "   setup %v, steady after %v; measuring %v at %.0f changes/s\n", res.Setup.Round(time.Second), res.Steady.Round(time.Millisecond), p.Duration, p.Rate)
	if cpuProfile != "" && tg.name == targetKubesvc {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	before := syncCounts()
	lat, changes, missed, err := flip(ctx, cs, pods, rv, p)
	if tg.name == targetKubesvc {
		after := syncCounts()
		fmt.Fprintf(os.Stderr, "   kubesvc EndpointSlice syncs during the measurement: success %v, stale cache %v, error %v\n",
			after["success"]-before["success"], after["stale"]-before["stale"], after["error"]-before["error"])
	}
	if err != nil {
		return nil, err
	}
	res.Changes, res.Observed, res.Missed = changes, len(lat), missed
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
		res.P50, res.P90, res.P99, res.Max = q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		res.Mean = sum / time.Duration(len(lat))
	}
	return res, nil
}

// setup creates the nodes, namespaces, Services and Ready pods with p.Parallel writers and
// returns the pods.
func setup(ctx context.Context, cs kubernetes.Interface, tg *target, p params) ([]podRef, error) {
	for i := range p.Nodes {
		if err := endpointtest.CreateNode(ctx, cs, fmt.Sprintf("node-%d", i), fmt.Sprintf("zone-%d", i%3)); err != nil {
			return nil, err
		}
	}
	for i := range p.Namespaces {
		if err := endpointtest.CreateNamespace(ctx, cs, fmt.Sprintf("ns-%d", i), tg.waitSA); err != nil {
			return nil, err
		}
	}
	type task func() error
	tasks := make(chan task)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range p.Parallel {
		wg.Go(func() {
			for t := range tasks {
				if err := t(); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
	var pods []podRef
	ready := time.Now().Add(-time.Hour)
	for j := range p.Services {
		ns, svc := fmt.Sprintf("ns-%d", j%p.Namespaces), fmt.Sprintf("svc-%d", j)
		sel := map[string]string{"svc": svc}
		tasks <- func() error {
			_, err := cs.CoreV1().Services(ns).Create(ctx, endpointtest.Service(svc, sel, endpointtest.Port("http", 80, corev1.ProtocolTCP, 8080)), metav1.CreateOptions{})
			return err
		}
		for k := range p.PodsPerService {
			idx := j*p.PodsPerService + k
			name := fmt.Sprintf("%s-%d", svc, k)
			ip := fmt.Sprintf("10.%d.%d.%d", 100+idx/62500, idx/250%250, idx%250+1)
			st := endpointtest.PodState{Labels: sel, Node: fmt.Sprintf("node-%d", idx%p.Nodes), IPs: []string{ip}, Ready: true, ReadySince: ready}
			pods = append(pods, podRef{ns, name})
			tasks <- func() error {
				_, err := endpointtest.CreatePod(ctx, cs, ns, name, st)
				return err
			}
		}
	}
	close(tasks)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
		return pods, nil
	}
}

// readyEndpoints counts Ready endpoints in controller-managed slices and returns the list's
// resourceVersion.
func readyEndpoints(ctx context.Context, cs kubernetes.Interface) (int, string, error) {
	n, cont, rv := 0, "", ""
	for {
		list, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{LabelSelector: managedBy, Limit: 500, Continue: cont})
		if err != nil {
			return 0, "", err
		}
		if rv == "" {
			rv = list.ResourceVersion
		}
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					n++
				}
			}
		}
		if cont = list.Continue; cont == "" {
			return n, rv, nil
		}
	}
}

// waitReady polls until want endpoints are Ready and returns a resourceVersion to watch from.
func waitReady(ctx context.Context, cs kubernetes.Interface, want int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, rv, err := readyEndpoints(ctx, cs)
		if err != nil {
			return "", err
		}
		if n == want {
			return rv, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%d of %d endpoints Ready after %v", n, want, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type pendingChange struct {
	ready bool
	sent  time.Time
}

// tracker matches slice watch events with pending Ready changes.
type tracker struct {
	mu      sync.Mutex
	pending map[podRef]pendingChange
	lat     []time.Duration
}

func (t *tracker) add(p podRef, c pendingChange) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[p] = c
}

func (t *tracker) isPending(p podRef) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.pending[p]
	return ok
}

func (t *tracker) observe(s *discovery.EndpointSlice, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range s.Endpoints {
		if e.TargetRef == nil {
			continue
		}
		p := podRef{s.Namespace, e.TargetRef.Name}
		c, ok := t.pending[p]
		if ok && e.Conditions.Ready != nil && *e.Conditions.Ready == c.ready {
			t.lat = append(t.lat, now.Sub(c.sent))
			delete(t.pending, p)
		}
	}
}

func (t *tracker) left() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// flip changes the readiness of random pods at p.Rate for p.Duration, watching slices from
// rv, and returns the latencies, the number of changes and those never seen.
func flip(ctx context.Context, cs kubernetes.Interface, pods []podRef, rv string, p params) ([]time.Duration, int, int, error) {
	tr := &tracker{pending: map[podRef]pendingChange{}}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() { watchErr <- watchSlices(wctx, cs, rv, tr) }()

	ready := make(map[podRef]bool, len(pods)) // current readiness
	for _, pod := range pods {
		ready[pod] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	interval := time.Duration(float64(time.Second) / p.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(p.Duration)
	var writes sync.WaitGroup
	writeErr := make(chan error, 1)
	changes := 0
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil, 0, 0, ctx.Err()
		case err := <-watchErr:
			return nil, 0, 0, fmt.Errorf("watch: %w", err)
		case err := <-writeErr:
			return nil, 0, 0, err
		case <-tick.C:
		}
		pod := pods[rng.IntN(len(pods))]
		for tr.isPending(pod) {
			pod = pods[rng.IntN(len(pods))]
		}
		ready[pod] = !ready[pod]
		want := ready[pod]
		changes++
		status := "False"
		if want {
			status = "True"
		}
		body := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":%q,"lastTransitionTime":%q}]}}`,
			status, time.Now().UTC().Format(time.RFC3339))
		tr.add(pod, pendingChange{ready: want, sent: time.Now()})
		writes.Go(func() {
			_, err := cs.CoreV1().Pods(pod.ns).Patch(ctx, pod.name, types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{}, "status")
			if err != nil {
				select {
				case writeErr <- fmt.Errorf("patch %s/%s status: %w", pod.ns, pod.name, err):
				default:
				}
			}
		})
	}
	writes.Wait()
	deadline := time.Now().Add(p.Drain)
	for tr.left() > 0 && time.Now().Before(deadline) {
		select {
		case err := <-watchErr:
			return nil, 0, 0, fmt.Errorf("watch: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.lat, changes, len(tr.pending), nil
}

// watchSlices feeds slice events to tr until ctx ends, re-watching from the last seen
// resourceVersion when the server closes the watch.
func watchSlices(ctx context.Context, cs kubernetes.Interface, rv string, tr *tracker) error {
	for {
		w, err := cs.DiscoveryV1().EndpointSlices("").Watch(ctx, metav1.ListOptions{LabelSelector: managedBy, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for ev := range w.ResultChan() {
			now := time.Now()
			switch ev.Type {
			case watch.Added, watch.Modified:
				s := ev.Object.(*discovery.EndpointSlice)
				rv = s.ResourceVersion
				tr.observe(s, now)
			case watch.Bookmark:
				if s, ok := ev.Object.(*discovery.EndpointSlice); ok {
					rv = s.ResourceVersion
				}
			case watch.Error:
				w.Stop()
				return errors.New(fmt.Sprint(ev.Object))
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func printTable(w io.Writer, p params, results []*result) {
	fmt.Fprintf(w, "network-programming latency: %d Services × %d pods, %.0f Ready changes/s for %v\n",
		p.Services, p.PodsPerService, p.Rate, p.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tendpoints\tsetup\tsteady\tchanges\tseen\tmissed\tp50\tp90\tp99\tmax\tmean\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.Target, r.Endpoints,
			r.Setup.Round(time.Second), r.Steady.Round(100*time.Millisecond), r.Changes, r.Observed, r.Missed,
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), ms(r.Mean))
	}
	tw.Flush()
	var ours *result
	for _, r := range results {
		if r.Target == targetKubesvc {
			ours = r
		}
	}
	for _, r := range results {
		if ours != nil && r != ours && r.P50 > 0 && r.P99 > 0 {
			fmt.Fprintf(w, "kubesvc / %s: p50 %.2f×, p99 %.2f×\n", r.Target,
				float64(ours.P50)/float64(r.P50), float64(ours.P99)/float64(r.P99))
		}
	}
}
