package endpointslicemirroring

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
)

// Event handlers only queue Endpoints keys; the workers do the API work.

func (c *Controller) onServiceAdd(obj any) {
	if svc, ok := obj.(*corev1.Service); ok && svc.Spec.Selector == nil {
		c.enqueue(obj)
	}
}

// onServiceUpdate queues the Endpoints when the Service gains or loses its selector.
func (c *Controller) onServiceUpdate(old, cur any) {
	prev, ok1 := old.(*corev1.Service)
	svc, ok2 := cur.(*corev1.Service)
	if ok1 && ok2 && (svc.Spec.Selector == nil) != (prev.Spec.Selector == nil) {
		c.enqueue(cur)
	}
}

func (c *Controller) onServiceDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if svc, ok := obj.(*corev1.Service); ok && svc.Spec.Selector == nil {
		c.enqueue(svc)
	}
}

func (c *Controller) onEndpointsAdd(obj any) {
	if ep, ok := obj.(*corev1.Endpoints); ok && shouldMirror(ep) {
		c.enqueue(ep)
	}
}

// onEndpointsUpdate queues the Endpoints unless it was not mirrored before or after.
func (c *Controller) onEndpointsUpdate(old, cur any) {
	prev, ok1 := old.(*corev1.Endpoints)
	ep, ok2 := cur.(*corev1.Endpoints)
	if ok1 && ok2 && (shouldMirror(ep) || shouldMirror(prev)) {
		c.enqueue(ep)
	}
}

func (c *Controller) onEndpointsDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if ep, ok := obj.(*corev1.Endpoints); ok && shouldMirror(ep) {
		c.enqueue(ep)
	}
}

func (c *Controller) onEndpointSliceAdd(obj any) {
	if s, ok := obj.(*discovery.EndpointSlice); ok && managedByController(s) && c.tracker.ShouldSync(s) {
		c.queueForSlice(s)
	}
}

func (c *Controller) onEndpointSliceUpdate(old, cur any) {
	prev, ok1 := old.(*discovery.EndpointSlice)
	s, ok2 := cur.(*discovery.EndpointSlice)
	if !ok1 || !ok2 {
		return
	}
	if s.Labels[discovery.LabelServiceName] != prev.Labels[discovery.LabelServiceName] {
		c.queueForSlice(s)
		c.queueForSlice(prev)
		return
	}
	if managedByController(prev) != managedByController(s) || (managedByController(s) && c.tracker.ShouldSync(s)) {
		c.queueForSlice(s)
	}
}

func (c *Controller) onEndpointSliceDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discovery.EndpointSlice)
	if ok && managedByController(s) && c.tracker.Has(s) && !c.tracker.HandleDeletion(s) {
		c.queueForSlice(s)
	}
}

func (c *Controller) queueForSlice(s *discovery.EndpointSlice) {
	name := s.Labels[discovery.LabelServiceName]
	if name == "" {
		runtime.HandleError(fmt.Errorf("EndpointSlice %s/%s has no %s label", s.Namespace, s.Name, discovery.LabelServiceName))
		return
	}
	c.queue.AddAfter(s.Namespace+"/"+name, c.batchPeriod)
}

func managedByController(s *discovery.EndpointSlice) bool {
	return s.Labels[discovery.LabelManagedBy] == ControllerName
}
