package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	protobuf = "application/vnd.kubernetes.protobuf"
	// tableAccept is what kubectl get sends.
	tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	// genLabel carries the update number in the watch phase.
	genLabel = "bench-gen"
)

// params are the workload sizes.
type params struct {
	services    int
	namespaces  int
	concurrency int
	watchers    int
	updates     int
	listReps    int
	headless    bool
}

func (p params) nsName(i int) string { return "bench-" + strconv.Itoa(i) }

// svcAt returns the namespace and name of service i; service i lives in namespace i%namespaces,
// so the watched namespace bench-0 holds services 0, n, 2n, ...
func (p params) svcAt(i int) (string, string) {
	return p.nsName(i % p.namespaces), fmt.Sprintf("svc-%05d", i)
}

// newClient returns a protobuf clientset that does not throttle. With ownConn it gets its own
// TCP connection (client-go shares one transport between identical configs, and a custom Dial
// makes the config uncacheable), as separate processes such as node agents would.
func newClient(base *rest.Config, ownConn bool) (*kubernetes.Clientset, error) {
	c := rest.CopyConfig(base)
	c.QPS, c.Burst = 5000, 10000
	c.ContentType = protobuf
	c.AcceptContentTypes = protobuf + ",application/json"
	c.UserAgent = "kubesvc-bench"
	if ownConn {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		c.Dial = d.DialContext
	}
	return kubernetes.NewForConfig(c)
}

// parallel runs op(i) for i in [0,n) on workers goroutines and returns each call's latency
// (indexed by i), the wall time, the number of failures and the first error.
func parallel(ctx context.Context, n, workers int, op func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, int, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				s := time.Now()
				err := op(ctx, i)
				lat[i] = time.Since(s)
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(t0), int(failed.Load()), firstErr
}

func makeNamespaces(ctx context.Context, cs kubernetes.Interface, p params) error {
	for i := 0; i < p.namespaces; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.nsName(i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

func service(p params, i int) *corev1.Service {
	ns, name := p.svcAt(i)
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}
	if p.headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return s
}

// createResult is phase 1.
type createResult struct {
	lat      []time.Duration
	total    time.Duration
	failed   int
	firstErr error
	ips      int // services that got a ClusterIP
	dupIPs   int // ClusterIPs handed out more than once
}

func createServices(ctx context.Context, cs kubernetes.Interface, p params) createResult {
	ips := make([]string, p.services)
	lat, total, failed, firstErr := parallel(ctx, p.services, p.concurrency, func(ctx context.Context, i int) error {
		s := service(p, i)
		got, err := cs.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create %s/%s: %w", s.Namespace, s.Name, err)
		}
		ips[i] = got.Spec.ClusterIP
		return nil
	})
	r := createResult{lat: lat, total: total, failed: failed, firstErr: firstErr}
	seen := make(map[string]bool, len(ips))
	for _, ip := range ips {
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		r.ips++
		if seen[ip] {
			r.dupIPs++
		}
		seen[ip] = true
	}
	return r
}

// listResult is phase 2: the median of listReps repetitions of each kind of list.
type listResult struct {
	full, paged, table time.Duration
	items              int
}

func listServices(ctx context.Context, cs *kubernetes.Clientset, p params) (listResult, error) {
	var r listResult
	var full, paged, table []time.Duration
	for rep := 0; rep < p.listReps; rep++ {
		t0 := time.Now()
		l, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return r, fmt.Errorf("list services: %w", err)
		}
		full = append(full, time.Since(t0))
		r.items = len(l.Items)

		t0 = time.Now()
		n, cont := 0, ""
		for {
			l, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
			if err != nil {
				return r, fmt.Errorf("list services limit=500: %w", err)
			}
			n += len(l.Items)
			if cont = l.Continue; cont == "" {
				break
			}
		}
		paged = append(paged, time.Since(t0))
		if n != r.items {
			return r, fmt.Errorf("paged list returned %d services, full list %d", n, r.items)
		}

		t0 = time.Now()
		n, cont = 0, ""
		for {
			req := cs.CoreV1().RESTClient().Get().Resource("services").Param("limit", "500").SetHeader("Accept", tableAccept)
			if cont != "" {
				req = req.Param("continue", cont)
			}
			body, err := req.Do(ctx).Raw()
			if err != nil {
				return r, fmt.Errorf("list services as Table: %w", err)
			}
			var t struct {
				Metadata struct {
					Continue string `json:"continue"`
				} `json:"metadata"`
				Rows []json.RawMessage `json:"rows"`
			}
			if err := json.Unmarshal(body, &t); err != nil {
				return r, fmt.Errorf("decode Table: %w", err)
			}
			n += len(t.Rows)
			if cont = t.Metadata.Continue; cont == "" {
				break
			}
		}
		table = append(table, time.Since(t0))
		if n != r.items {
			return r, fmt.Errorf("Table list returned %d rows, full list %d", n, r.items)
		}
	}
	r.full, r.paged, r.table = median(full), median(paged), median(table)
	return r, nil
}

// watchResult is phase 3.
type watchResult struct {
	total    time.Duration // first patch sent → every watcher saw every update
	delivery []time.Duration
	patchLat []time.Duration
	restarts int // watches the server ended that the watchers resumed
}

// watcher counts the updates one watch delivered. Like a client-go reflector it resumes from
// the last resourceVersion it saw when the server ends the watch (kube-apiserver closes
// watchers that do not keep up), and counts those restarts.
type watcher struct {
	seen     []bool
	count    atomic.Int64
	restarts atomic.Int64
	lat      []time.Duration
	warm     chan struct{}
	done     chan struct{}
	err      atomic.Value // string: why the watcher stopped early
}

// run consumes first, the watch opened on namespace ns from rv, and its resumptions until
// ctx ends.
func (w *watcher) run(ctx context.Context, cs kubernetes.Interface, ns, rv string, first watch.Interface, sent []atomic.Int64) {
	warmed := false
	wi := first
	for {
		for ev := range wi.ResultChan() {
			now := time.Now()
			if ev.Type == watch.Error {
				w.err.Store(fmt.Sprintf("watch error event: %v", ev.Object))
				wi.Stop()
				return
			}
			s, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			rv = s.ResourceVersion
			if ev.Type != watch.Modified {
				continue
			}
			v := s.Labels[genLabel]
			if v == "warm" {
				if !warmed {
					warmed = true
					close(w.warm)
				}
				continue
			}
			j, err := strconv.Atoi(v)
			if err != nil || j < 0 || j >= len(w.seen) || w.seen[j] {
				continue
			}
			w.seen[j] = true
			w.lat = append(w.lat, now.Sub(time.Unix(0, sent[j].Load())))
			if w.count.Add(1) == int64(len(w.seen)) {
				close(w.done)
			}
		}
		wi.Stop()
		if ctx.Err() != nil {
			return
		}
		w.restarts.Add(1)
		var err error
		wi, err = cs.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() == nil {
				w.err.Store(fmt.Sprintf("re-watch from %s: %v", rv, err))
			}
			return
		}
	}
}

func patchLabel(ctx context.Context, cs kubernetes.Interface, ns, name, value string) error {
	body := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, genLabel, value)
	_, err := cs.CoreV1().Services(ns).Patch(ctx, name, types.MergePatchType, []byte(body), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("patch %s/%s: %w", ns, name, err)
	}
	return nil
}

// watchServices opens p.watchers watches on namespace bench-0, each on its own connection,
// from the namespace's current resourceVersion; waits until every watch delivered a warm-up
// patch; then sends p.updates label patches (p.concurrency at a time, each on a different
// service) and waits until every watcher saw every one.
func watchServices(ctx context.Context, base *rest.Config, cs kubernetes.Interface, p params) (watchResult, error) {
	var r watchResult
	perNS := (p.services + p.namespaces - 1) / p.namespaces
	if p.updates > perNS {
		return r, fmt.Errorf("-updates %d exceeds the %d services in the watched namespace", p.updates, perNS)
	}
	ns := p.nsName(0)
	l, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return r, fmt.Errorf("list %s: %w", ns, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	sent := make([]atomic.Int64, p.updates)
	ws := make([]*watcher, p.watchers)
	for i := range ws {
		wc, err := newClient(base, true)
		if err != nil {
			return r, err
		}
		wi, err := wc.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion, AllowWatchBookmarks: true})
		if err != nil {
			return r, fmt.Errorf("watcher %d: %w", i, err)
		}
		ws[i] = &watcher{seen: make([]bool, p.updates), lat: make([]time.Duration, 0, p.updates),
			warm: make(chan struct{}), done: make(chan struct{})}
		wg.Add(1)
		go func() { defer wg.Done(); ws[i].run(ctx, wc, ns, l.ResourceVersion, wi, sent) }()
	}
	_, warmName := p.svcAt(0)
	if err := patchLabel(ctx, cs, ns, warmName, "warm"); err != nil {
		return r, err
	}
	if err := waitAll(ctx, ws, func(w *watcher) <-chan struct{} { return w.warm }, time.Minute); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	t0 := time.Now()
	lat, _, failed, firstErr := parallel(ctx, p.updates, p.concurrency, func(ctx context.Context, j int) error {
		ns, name := p.svcAt(j * p.namespaces)
		sent[j].Store(time.Now().UnixNano())
		return patchLabel(ctx, cs, ns, name, strconv.Itoa(j))
	})
	if failed > 0 {
		return r, fmt.Errorf("%d of %d patches failed, first: %w", failed, p.updates, firstErr)
	}
	r.patchLat = lat
	if err := waitAll(ctx, ws, func(w *watcher) <-chan struct{} { return w.done }, 5*time.Minute); err != nil {
		return r, fmt.Errorf("updates: %w", err)
	}
	r.total = time.Since(t0)
	cancel()
	wg.Wait()
	for _, w := range ws {
		r.delivery = append(r.delivery, w.lat...)
		r.restarts += int(w.restarts.Load())
	}
	return r, nil
}

// waitAll waits until ch(w) is closed for every watcher.
func waitAll(ctx context.Context, ws []*watcher, ch func(*watcher) <-chan struct{}, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i, w := range ws {
		select {
		case <-ch(w):
		case <-deadline.C:
			return fmt.Errorf("watcher %d not done after %v (saw %d of %d, err %v)", i, timeout, w.count.Load(), len(w.seen), w.err.Load())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// deleteResult is phase 4.
type deleteResult struct {
	lat      []time.Duration
	total    time.Duration
	failed   int
	firstErr error
}

func deleteServices(ctx context.Context, cs kubernetes.Interface, p params) deleteResult {
	lat, total, failed, firstErr := parallel(ctx, p.services, p.concurrency, func(ctx context.Context, i int) error {
		ns, name := p.svcAt(i)
		if err := cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete %s/%s: %w", ns, name, err)
		}
		return nil
	})
	return deleteResult{lat: lat, total: total, failed: failed, firstErr: firstErr}
}
