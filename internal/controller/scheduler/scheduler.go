// Package scheduler is a minimal kube-scheduler running inside `kubesvc server`: every pod
// without spec.nodeName (and with the default schedulerName, no scheduling gates) is bound
// through POST pods/{name}/binding to a fitting node — schedulable, Ready (or tolerating
// the not-ready/unreachable taint), its NoSchedule/NoExecute taints tolerated, nodeSelector
// and required node affinity matched, host ports free, requests within the allocatable it
// lists — preferring the node with the fewest pods. A pod that fits nowhere stays Pending
// with PodScheduled=False, reason Unschedulable and kube-scheduler's message ("0/2 nodes are
// available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were
// unschedulable. preemption: ..."), and is retried when a node or an assigned pod changes.
//
// Not implemented: scoring beyond pod count, inter-pod (anti-)affinity, topology spread,
// volumes, preemption, extenders, profiles. Only internal/server, the node lifecycle
// controller (AddNodeNameIndex) and tests import it.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// UnschedulableRetry is how long an unschedulable pod waits for a retry when nothing in
// the cluster changes (kube's podMaxInUnschedulablePodsDuration).
const UnschedulableRetry = 5 * time.Minute

// NodeNameIndex indexes pods by spec.nodeName; controllers sharing a pod informer reuse it.
const NodeNameIndex = "kubesvc/spec.nodeName"

// AddNodeNameIndex adds NodeNameIndex to a pod informer unless it has it already.
func AddNodeNameIndex(inf cache.SharedIndexInformer) error {
	if _, ok := inf.GetIndexer().GetIndexers()[NodeNameIndex]; ok {
		return nil
	}
	return inf.AddIndexers(cache.Indexers{NodeNameIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
}

// Config configures the scheduler.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// Informers is a shared informer factory; nil makes the scheduler create (and shut
	// down) its own. A shared factory is started by Run but shut down by its owner.
	Informers informers.SharedInformerFactory
	// SchedulerName selects the pods to schedule by spec.schedulerName; "" means
	// "default-scheduler".
	SchedulerName string
	// Clock defaults to the real clock.
	Clock clock.WithTicker
}

// Controller is the scheduler. Create it with New; Run may be called once.
type Controller struct {
	client      kubernetes.Interface
	factory     informers.SharedInformerFactory
	ownFactory  bool
	name        string
	pods        corelisters.PodLister
	podIndex    cache.Indexer
	nodes       corelisters.NodeLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	clock       clock.WithTicker
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder

	mu sync.Mutex
	// assumed maps pods bound by this scheduler that the informer still shows unassigned
	// to their node, so that they count on it.
	assumed map[string]string
	// unschedulable holds the pods waiting for a change in the cluster.
	unschedulable map[string]bool
}

// New returns a scheduler; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("scheduler: Config.Client is required")
	}
	c := &Controller{client: cfg.Client, factory: cfg.Informers, name: cfg.SchedulerName, clock: cfg.Clock,
		assumed: map[string]string{}, unschedulable: map[string]bool{}}
	if c.factory == nil {
		c.factory, c.ownFactory = informers.NewSharedInformerFactory(cfg.Client, 0), true
	}
	if c.name == "" {
		c.name = corev1.DefaultSchedulerName
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler", Clock: c.clock})
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: c.name})

	pods := c.factory.Core().V1().Pods()
	if err := AddNodeNameIndex(pods.Informer()); err != nil {
		return nil, fmt.Errorf("scheduler: index pods: %w", err)
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onPod,
		UpdateFunc: func(_, cur any) { c.onPod(cur) },
		DeleteFunc: c.onPodDelete,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: watch pods: %w", err)
	}
	nodes := c.factory.Core().V1().Nodes()
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.retryUnschedulable() },
		UpdateFunc: func(old, cur any) {
			if nodeChanged(old.(*corev1.Node), cur.(*corev1.Node)) {
				c.retryUnschedulable()
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("scheduler: watch nodes: %w", err)
	}
	c.pods, c.podIndex, c.nodes = pods.Lister(), pods.Informer().GetIndexer(), nodes.Lister()
	c.synced = []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced}
	return c, nil
}

// Run starts the informers and workers goroutines (1 keeps placements strictly
// sequential), and blocks until ctx is done and they have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer func() {
		c.queue.ShutDown()
		if c.ownFactory {
			c.factory.Shutdown()
		}
		wg.Wait()
		c.broadcaster.Shutdown()
	}()
	c.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("scheduler", ctx.Done(), c.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.scheduleOne(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("scheduling failed", "pod", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func keyOf(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// needsScheduling: unassigned, ours, not gated, not terminal or being deleted.
func (c *Controller) needsScheduling(p *corev1.Pod) bool {
	name := p.Spec.SchedulerName
	if name == "" {
		name = corev1.DefaultSchedulerName
	}
	return p.Spec.NodeName == "" && name == c.name && len(p.Spec.SchedulingGates) == 0 &&
		p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func (c *Controller) onPod(obj any) {
	p := obj.(*corev1.Pod)
	if c.needsScheduling(p) {
		c.queue.Add(keyOf(p))
		return
	}
	if p.Spec.NodeName == "" {
		return
	}
	c.mu.Lock()
	delete(c.assumed, keyOf(p))
	delete(c.unschedulable, keyOf(p))
	c.mu.Unlock()
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		c.retryUnschedulable() // its ports and resources are about to be free
	}
}

func (c *Controller) onPodDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.assumed, keyOf(p))
	delete(c.unschedulable, keyOf(p))
	c.mu.Unlock()
	if p.Spec.NodeName != "" {
		c.retryUnschedulable()
	}
}

// retryUnschedulable queues every unschedulable pod again (a node or pod changed).
func (c *Controller) retryUnschedulable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.unschedulable {
		c.queue.Add(k)
	}
}

// nodeChanged: a change that can make a pod fit.
func nodeChanged(old, cur *corev1.Node) bool {
	ready := func(n *corev1.Node) corev1.ConditionStatus {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status
			}
		}
		return ""
	}
	return !reflect.DeepEqual(old.Labels, cur.Labels) || !reflect.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
		old.Spec.Unschedulable != cur.Spec.Unschedulable || ready(old) != ready(cur) ||
		!reflect.DeepEqual(old.Status.Allocatable, cur.Status.Allocatable)
}

// scheduleOne places one pod, or records why it cannot be placed.
func (c *Controller) scheduleOne(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !c.needsScheduling(pod)) {
		c.mu.Lock()
		delete(c.unschedulable, key)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if _, bound := c.assumed[key]; bound {
		c.mu.Unlock()
		return nil
	}
	node, msg, err := c.pickNode(pod)
	if node != "" {
		c.assumed[key] = node
		delete(c.unschedulable, key)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if node == "" {
		return c.recordUnschedulable(ctx, pod, msg)
	}
	return c.bind(ctx, pod, node)
}

// pickNode returns the fitting node with the fewest pods (by name on ties), or "" and the
// reason nothing fits. c.mu is held.
func (c *Controller) pickNode(pod *corev1.Pod) (string, string, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return "", "", err
	}
	if len(nodes) == 0 {
		return "", ErrNoNodes, nil
	}
	states := c.nodeStates(nodes)
	sort.Slice(states, func(i, j int) bool {
		if len(states[i].pods) != len(states[j].pods) {
			return len(states[i].pods) < len(states[j].pods)
		}
		return states[i].node.Name < states[j].node.Name
	})
	failures := map[string]*failure{}
	for _, ns := range states {
		f := filter(pod, ns)
		if f == nil {
			return ns.node.Name, "", nil
		}
		failures[ns.node.Name] = f
	}
	return "", fitError(len(nodes), failures), nil
}

// nodeStates collects each node's non-terminal pods, including pods assumed bound to it.
func (c *Controller) nodeStates(nodes []*corev1.Node) []*nodeState {
	byName := map[string]*nodeState{}
	out := make([]*nodeState, 0, len(nodes))
	for _, n := range nodes {
		s := &nodeState{node: n}
		objs, _ := c.podIndex.ByIndex(NodeNameIndex, n.Name)
		for _, o := range objs {
			if p := o.(*corev1.Pod); p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				s.pods = append(s.pods, p)
			}
		}
		byName[n.Name] = s
		out = append(out, s)
	}
	for key, node := range c.assumed {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		p, err := c.pods.Pods(ns).Get(name)
		if s := byName[node]; err == nil && s != nil && p.Spec.NodeName == "" {
			s.pods = append(s.pods, p)
		}
	}
	return out
}

// bind posts the Binding; on failure the assumption is dropped.
func (c *Controller) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err != nil {
		c.mu.Lock()
		delete(c.assumed, keyOf(pod))
		c.mu.Unlock()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("bind %s to %s: %w", keyOf(pod), node, err)
	}
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

// recordUnschedulable sets PodScheduled=False/Unschedulable with msg (when it changed),
// emits FailedScheduling and parks the pod until the cluster changes.
func (c *Controller) recordUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) error {
	key := keyOf(pod)
	c.mu.Lock()
	c.unschedulable[key] = true
	c.mu.Unlock()
	c.queue.AddAfter(key, UnschedulableRetry)
	c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, ObservedGeneration: pod.Generation, LastTransitionTime: metav1.NewTime(c.clock.Now())}
	for _, cur := range pod.Status.Conditions {
		if cur.Type != corev1.PodScheduled {
			continue
		}
		if cur.Status == cond.Status && cur.Reason == cond.Reason && cur.Message == cond.Message {
			return nil
		}
		if cur.Status == cond.Status {
			cond.LastTransitionTime = cur.LastTransitionTime
		}
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{cond}}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set PodScheduled condition of %s: %w", key, err)
	}
	return nil
}
