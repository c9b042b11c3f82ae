package agent

import (
	"context"
	"fmt"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

var everything = labels.Everything()

// startInformers starts the informers (Services and Nodes of the cluster, the pods bound to
// this node) and waits for their caches: service variables need every Service that exists
// when a container starts (ENV-07).
func (a *Agent) startInformers(ctx context.Context) error {
	a.factory = informers.NewSharedInformerFactory(a.client, 0)
	svc := a.factory.Core().V1().Services().Informer()
	nodes := a.factory.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(a.nodeEvents()); err != nil {
		return err
	}
	a.podFactory = informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + a.nodeName
	}))
	pods := a.podFactory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				a.podRemoved(p)
			}
		},
	}); err != nil {
		return err
	}
	a.factory.Start(a.ctx.Done())
	a.podFactory.Start(a.ctx.Done())
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), svc.HasSynced, nodes.HasSynced, pods.HasSynced) {
		return fmt.Errorf("agent: informer caches did not sync")
	}
	return nil
}

// podChanged hands the latest version of a pod to its worker, starting one if needed.
func (a *Agent) podChanged(pod *corev1.Pod) {
	if pod.Spec.NodeName != a.nodeName {
		return
	}
	a.mu.Lock()
	w, ok := a.workers[pod.UID]
	if !ok {
		if a.ctx.Err() != nil {
			a.mu.Unlock()
			return
		}
		w = newPodWorker(a, pod)
		a.workers[pod.UID] = w
	}
	a.mu.Unlock()
	w.update(pod, false)
}

func (a *Agent) podRemoved(pod *corev1.Pod) {
	a.mu.Lock()
	w := a.workers[pod.UID]
	a.mu.Unlock()
	if w != nil {
		w.update(pod, true)
	}
}

// workerDone forgets a worker that finished its pod.
func (a *Agent) workerDone(uid types.UID) {
	a.mu.Lock()
	delete(a.workers, uid)
	a.mu.Unlock()
}

// worker returns the worker of pod ns/name, or nil.
func (a *Agent) worker(ns, name string) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if w.namespace == ns && w.name == name {
			return w
		}
	}
	return nil
}

// adopt removes what a previous run left for pods that no longer exist; the pods that do exist
// are adopted by their workers (which read their sandbox and containers from the runtime).
func (a *Agent) adopt() {
	uids, err := a.rt.PodDirs()
	if err != nil {
		klog.ErrorS(err, "agent: list pod state")
		return
	}
	// The synced informer cache, not the workers: its handlers may still be delivering.
	pods, err := a.podFactory.Core().V1().Pods().Lister().List(everything)
	if err != nil {
		klog.ErrorS(err, "agent: list pods")
		return
	}
	known := map[string]bool{}
	for _, p := range pods {
		known[string(p.UID)] = true
	}
	for _, uid := range uids {
		if known[uid] {
			continue
		}
		klog.InfoS("agent: removing orphaned pod", "uid", uid)
		a.killOrphan(uid)
	}
}

// killOrphan kills every container of a pod the API no longer has and removes its sandbox.
func (a *Agent) killOrphan(uid string) {
	cs, _ := a.rt.Containers(uid)
	for _, attempts := range cs {
		for _, c := range attempts {
			_ = a.rt.Signal(c, syscall.SIGKILL)
		}
	}
	for _, attempts := range cs {
		for _, c := range attempts {
			waitFor(a.ctx, 5*time.Second, func() bool { return !a.rt.State(c).Running })
		}
	}
	if err := a.rt.RemoveSandbox(uid); err != nil {
		klog.ErrorS(err, "agent: remove orphaned sandbox", "uid", uid)
	}
}

// relistLoop pokes the workers with containers the agent did not start itself (adopted after
// a restart) once per period, so their exits are noticed, as the kubelet's PLEG relists; the
// exits of its own shims arrive as runtime events. Every fullRelist all workers are poked.
func (a *Agent) relistLoop(ctx context.Context) {
	const fullRelist = 10
	tick := time.NewTicker(DefaultRelistPeriod)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case uid := <-a.rt.Events():
			a.mu.Lock()
			w := a.workers[types.UID(uid)]
			a.mu.Unlock()
			if w != nil {
				w.kick()
			}
		case <-tick.C:
			a.mu.Lock()
			for _, w := range a.workers {
				if n%fullRelist == 0 || w.adopted.Load() {
					w.kick()
				}
			}
			a.mu.Unlock()
		}
	}
}

// waitFor polls cond every 20 ms until it is true, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}
