package proxytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// syncer copies the world's Nodes and the Services and EndpointSlices of Namespace into
// another API server (kube-apiserver in the KubeAPIServer variant), continuously, as
// kubelets and kube-controller-manager would have written them there: same names, labels
// and annotations; Service specs with the world's clusterIPs, nodePorts and
// healthCheckNodePort, and status.loadBalancer; slices with the world's endpoints and ports,
// owned by the copied Service; Nodes with their spec and addresses. Deletions are copied too.
// The copies are made from watch events, so a change reaches the other API server within
// one write (the dynamic cases measure reaction times from the proxies' API server).
type syncer struct {
	to     kubernetes.Interface
	svcs   cache.Indexer
	slices cache.Indexer
	nodes  cache.Indexer
	queue  workqueue.TypedRateLimitingInterface[syncKey]

	mu     sync.Mutex
	errors map[syncKey]error // the last failure of each object, for messages
}

// syncKey names an object of the world: kind "service" or "slice" (in Namespace) or "node".
type syncKey struct{ kind, name string }

// startSyncer starts copying from into to until the test ends; it returns once the world's
// informers have synced.
func startSyncer(t *testing.T, from, to kubernetes.Interface) *syncer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nsF := informers.NewSharedInformerFactoryWithOptions(from, 0, informers.WithNamespace(Namespace))
	clusterF := informers.NewSharedInformerFactory(from, 0)
	svcInf := nsF.Core().V1().Services().Informer()
	sliceInf := nsF.Discovery().V1().EndpointSlices().Informer()
	nodeInf := clusterF.Core().V1().Nodes().Informer()
	s := &syncer{
		to: to, svcs: svcInf.GetIndexer(), slices: sliceInf.GetIndexer(), nodes: nodeInf.GetIndexer(),
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[syncKey](5*time.Millisecond, 2*time.Second)),
		errors: map[syncKey]error{},
	}
	for kind, inf := range map[string]cache.SharedIndexInformer{"service": svcInf, "slice": sliceInf, "node": nodeInf} {
		enqueue := func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if m, ok := o.(metav1.Object); ok {
				s.queue.Add(syncKey{kind: kind, name: m.GetName()})
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
		}); err != nil {
			t.Fatal(err)
		}
	}
	nsF.Start(ctx.Done())
	clusterF.Start(ctx.Done())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		s.queue.ShutDown()
		wg.Wait()
		nsF.Shutdown()
		clusterF.Shutdown()
	})
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.HasSynced, sliceInf.HasSynced, nodeInf.HasSynced) {
		t.Fatal("syncer: world informers did not sync")
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s.work(ctx) {
			}
		}()
	}
	return s
}

// work copies one queued object; false when the queue shut down.
func (s *syncer) work(ctx context.Context) bool {
	k, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(k)
	var err error
	switch k.kind {
	case "service":
		err = s.syncService(ctx, k.name)
	case "slice":
		err = s.syncSlice(ctx, k.name)
	case "node":
		err = s.syncNode(ctx, k.name)
	}
	s.mu.Lock()
	if err != nil {
		s.errors[k] = err
	} else {
		delete(s.errors, k)
	}
	s.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		s.queue.AddRateLimited(k)
		return true
	}
	s.queue.Forget(k)
	return true
}

// lastErrors describes the objects whose copy currently fails (for timeout messages).
func (s *syncer) lastErrors() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errors) == 0 {
		return "the syncer has no failing copies"
	}
	return fmt.Sprintf("the syncer's failing copies: %v", s.errors)
}

func get[T any](idx cache.Indexer, key string) (*T, bool) {
	o, ok, err := idx.GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	v, ok := o.(*T)
	return v, ok
}

func (s *syncer) syncService(ctx context.Context, name string) error {
	c := s.to.CoreV1().Services(Namespace)
	src, ok := get[corev1.Service](s.svcs, Namespace+"/"+name)
	if !ok {
		if err := c.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete service %s: %w", name, err)
		}
		return nil
	}
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		want := &corev1.Service{ObjectMeta: copyMeta(src.ObjectMeta), Spec: *src.Spec.DeepCopy()}
		if cur, err = c.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get service %s: %w", name, err)
	default:
		cur.Labels, cur.Annotations, cur.Spec = src.Labels, src.Annotations, *src.Spec.DeepCopy()
		if cur, err = c.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update service %s: %w", name, err)
		}
	}
	if !equality.Semantic.DeepEqual(cur.Status.LoadBalancer, src.Status.LoadBalancer) {
		cur.Status.LoadBalancer = *src.Status.LoadBalancer.DeepCopy()
		if _, err := c.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of service %s: %w", name, err)
		}
	}
	return nil
}

func (s *syncer) syncSlice(ctx context.Context, name string) error {
	c := s.to.DiscoveryV1().EndpointSlices(Namespace)
	src, ok := get[discoveryv1.EndpointSlice](s.slices, Namespace+"/"+name)
	if !ok {
		if err := c.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete slice %s: %w", name, err)
		}
		return nil
	}
	want := &discoveryv1.EndpointSlice{
		ObjectMeta:  copyMeta(src.ObjectMeta),
		AddressType: src.AddressType,
		Endpoints:   src.DeepCopy().Endpoints,
		Ports:       src.DeepCopy().Ports,
	}
	// Owned by the copied Service, as the EndpointSlice controller writes it.
	if svc := src.Labels[discoveryv1.LabelServiceName]; svc != "" {
		owner, err := s.to.CoreV1().Services(Namespace).Get(ctx, svc, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("slice %s: its service %s: %w", name, svc, err) // retried once the Service is copied
		}
		want.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc, UID: owner.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	}
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create slice %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get slice %s: %w", name, err)
	default:
		want.ResourceVersion = cur.ResourceVersion
		if _, err := c.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update slice %s: %w", name, err)
		}
	}
	return nil
}

func (s *syncer) syncNode(ctx context.Context, name string) error {
	c := s.to.CoreV1().Nodes()
	src, ok := get[corev1.Node](s.nodes, name)
	if !ok {
		if err := c.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", name, err)
		}
		return nil
	}
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		want := &corev1.Node{ObjectMeta: copyMeta(src.ObjectMeta), Spec: *src.Spec.DeepCopy()}
		if cur, err = c.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get node %s: %w", name, err)
	default:
		if !equality.Semantic.DeepEqual(cur.Labels, src.Labels) || !equality.Semantic.DeepEqual(cur.Spec.Taints, src.Spec.Taints) {
			cur.Labels, cur.Spec.Taints = src.Labels, src.Spec.Taints
			if cur, err = c.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update node %s: %w", name, err)
			}
		}
	}
	// Addresses and the Ready condition (heartbeat times are not copied: they would make a
	// write per world heartbeat).
	want := corev1.NodeStatus{Addresses: src.Status.Addresses}
	for _, cond := range src.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			want.Conditions = append(want.Conditions, corev1.NodeCondition{Type: cond.Type, Status: cond.Status,
				Reason: cond.Reason, LastTransitionTime: cond.LastTransitionTime, LastHeartbeatTime: cond.LastTransitionTime})
		}
	}
	if !equality.Semantic.DeepEqual(cur.Status.Addresses, want.Addresses) || !equality.Semantic.DeepEqual(cur.Status.Conditions, want.Conditions) {
		cur.Status.Addresses, cur.Status.Conditions = want.Addresses, want.Conditions
		if _, err := c.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of node %s: %w", name, err)
		}
	}
	return nil
}

// copyMeta is the part of an object's metadata a copy in another API server keeps.
func copyMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
}
