package endpointslice

import (
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	esreconciler "k8s.io/endpointslice"
	esutil "k8s.io/endpointslice/util"
)

// Event handlers only record what changed in the queues; all API work happens in the
// workers (EP-S-06).

func (c *Controller) enqueueService(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		runtime.HandleError(err)
		return
	}
	c.serviceQueue.Add(key)
}

// onPodUpdate queues the pod's projection (namespace, old and new labels); the pod worker
// then finds the Services whose selector matched either.
func (c *Controller) onPodUpdate(old, cur any) {
	if key := esutil.GetPodUpdateProjectionKey(old, cur); key != nil {
		c.podQueue.Add(key)
	}
}

func (c *Controller) onNodeUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	// The zone label may be added after the Node is created.
	if nodeReady(o) != nodeReady(n) || o.Labels[corev1.LabelTopologyZone] != n.Labels[corev1.LabelTopologyZone] {
		c.topologyQueue.Add(topologyQueueItemKey)
	}
}

// onEndpointSliceAdd syncs the Service when a managed slice appears that this controller did
// not write (or whose generation it has not seen).
func (c *Controller) onEndpointSliceAdd(obj any) {
	s, ok := obj.(*discovery.EndpointSlice)
	if ok && c.reconciler.ManagedByController(s) && c.tracker.ShouldSync(s) {
		c.queueServiceForSlice(s)
	}
}

// onEndpointSliceUpdate syncs the Service when someone else changed a managed slice, when
// the managed-by label changed from or to this controller, or when the service-name label
// changed (then both Services).
func (c *Controller) onEndpointSliceUpdate(old, cur any) {
	prev, ok1 := old.(*discovery.EndpointSlice)
	s, ok2 := cur.(*discovery.EndpointSlice)
	if !ok1 || !ok2 {
		return
	}
	if s.Labels[discovery.LabelServiceName] != prev.Labels[discovery.LabelServiceName] {
		c.queueServiceForSlice(s)
		c.queueServiceForSlice(prev)
		return
	}
	if c.reconciler.ManagedByChanged(prev, s) || (c.reconciler.ManagedByController(s) && c.tracker.ShouldSync(s)) {
		c.queueServiceForSlice(s)
	}
}

// onEndpointSliceDelete syncs the Service when a managed slice it did not expect to lose is
// deleted.
func (c *Controller) onEndpointSliceDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discovery.EndpointSlice)
	if ok && c.reconciler.ManagedByController(s) && c.tracker.Has(s) && !c.tracker.HandleDeletion(s) {
		c.queueServiceForSlice(s)
	}
}

// queueServiceForSlice queues the slice's Service after max(1s, batch period), which batches
// the echoes of a multi-slice write.
func (c *Controller) queueServiceForSlice(s *discovery.EndpointSlice) {
	key, err := esreconciler.ServiceControllerKey(s)
	if err != nil {
		runtime.HandleError(err)
		return
	}
	c.serviceQueue.AddAfter(key, max(endpointSliceChangeMinSyncDelay, c.batchPeriod))
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
