package replicaset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Kind selects the workload kind a Controller manages.
type Kind string

// The kinds a Controller can manage. Upstream runs the ReplicaSet code for
// ReplicationControllers through a conversion layer; so does this package.
const (
	KindReplicaSet            Kind = "ReplicaSet"
	KindReplicationController Kind = "ReplicationController"
)

// workloads is the kind-specific part of the controller. Everything else sees a ReplicaSet:
// ReplicationControllers are converted to and from apps/v1 ReplicaSets at this boundary.
type workloads interface {
	gvk() schema.GroupVersionKind
	informer() cache.SharedIndexInformer
	// toRS converts an informer object to the ReplicaSet view; nil when obj is of another type.
	toRS(obj any) *appsv1.ReplicaSet
	get(namespace, name string) (*appsv1.ReplicaSet, error)
	list(namespace string) ([]*appsv1.ReplicaSet, error)
	// getLive reads the object from the API server (not the cache).
	getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error)
	// updateStatus writes rs.Status through the status subresource; rs carries the
	// resourceVersion it was read at.
	updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error)
	// eventObject is the object events about rs refer to.
	eventObject(rs *appsv1.ReplicaSet) runtime.Object
	// terminatingReplicas reports whether the status has the terminatingReplicas field.
	terminatingReplicas() bool
}

func newWorkloads(kind Kind, client kubernetes.Interface, f informers.SharedInformerFactory) workloads {
	if kind == KindReplicationController {
		inf := f.Core().V1().ReplicationControllers()
		return &rcWorkloads{client: client, inf: inf.Informer(), lister: inf.Lister()}
	}
	inf := f.Apps().V1().ReplicaSets()
	return &rsWorkloads{client: client, inf: inf.Informer(), lister: inf.Lister()}
}

type rsWorkloads struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister appslisters.ReplicaSetLister
}

func (w *rsWorkloads) gvk() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}
func (w *rsWorkloads) informer() cache.SharedIndexInformer { return w.inf }
func (w *rsWorkloads) terminatingReplicas() bool           { return true }

func (w *rsWorkloads) toRS(obj any) *appsv1.ReplicaSet {
	rs, _ := obj.(*appsv1.ReplicaSet)
	return rs
}

func (w *rsWorkloads) get(namespace, name string) (*appsv1.ReplicaSet, error) {
	return w.lister.ReplicaSets(namespace).Get(name)
}

func (w *rsWorkloads) list(namespace string) ([]*appsv1.ReplicaSet, error) {
	return w.lister.ReplicaSets(namespace).List(labels.Everything())
}

func (w *rsWorkloads) getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	return w.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (w *rsWorkloads) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	return w.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
}

func (w *rsWorkloads) eventObject(rs *appsv1.ReplicaSet) runtime.Object { return rs }

type rcWorkloads struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister corelisters.ReplicationControllerLister
}

func (w *rcWorkloads) gvk() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("ReplicationController")
}
func (w *rcWorkloads) informer() cache.SharedIndexInformer { return w.inf }
func (w *rcWorkloads) terminatingReplicas() bool           { return false }

func (w *rcWorkloads) toRS(obj any) *appsv1.ReplicaSet {
	rc, ok := obj.(*corev1.ReplicationController)
	if !ok {
		return nil
	}
	return rcToRS(rc)
}

func (w *rcWorkloads) get(namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := w.lister.ReplicationControllers(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (w *rcWorkloads) list(namespace string) ([]*appsv1.ReplicaSet, error) {
	rcs, err := w.lister.ReplicationControllers(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1.ReplicaSet, 0, len(rcs))
	for _, rc := range rcs {
		out = append(out, rcToRS(rc))
	}
	return out, nil
}

func (w *rcWorkloads) getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := w.client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (w *rcWorkloads) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	rc, err := w.client.CoreV1().ReplicationControllers(rs.Namespace).UpdateStatus(ctx, rsToRC(rs), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (w *rcWorkloads) eventObject(rs *appsv1.ReplicaSet) runtime.Object { return rsToRC(rs) }

// rcToRS converts a ReplicationController to the ReplicaSet view (upstream
// Convert_v1_ReplicationController_To_apps_ReplicaSet). Maps and the template are shared
// with rc: callers deep-copy before writing.
func rcToRS(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: rc.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        rc.Spec.Replicas,
			MinReadySeconds: rc.Spec.MinReadySeconds,
			Selector:        &metav1.LabelSelector{MatchLabels: rc.Spec.Selector},
		},
		Status: appsv1.ReplicaSetStatus{
			Replicas:             rc.Status.Replicas,
			FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas:        rc.Status.ReadyReplicas,
			AvailableReplicas:    rc.Status.AvailableReplicas,
			ObservedGeneration:   rc.Status.ObservedGeneration,
		},
	}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

// rsToRC converts the ReplicaSet view back to a ReplicationController.
func rsToRC(rs *appsv1.ReplicaSet) *corev1.ReplicationController {
	rc := &corev1.ReplicationController{
		ObjectMeta: rs.ObjectMeta,
		Spec: corev1.ReplicationControllerSpec{
			Replicas:        rs.Spec.Replicas,
			MinReadySeconds: rs.Spec.MinReadySeconds,
			Template:        &rs.Spec.Template,
		},
		Status: corev1.ReplicationControllerStatus{
			Replicas:             rs.Status.Replicas,
			FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
			ReadyReplicas:        rs.Status.ReadyReplicas,
			AvailableReplicas:    rs.Status.AvailableReplicas,
			ObservedGeneration:   rs.Status.ObservedGeneration,
		},
	}
	if rs.Spec.Selector != nil {
		rc.Spec.Selector = rs.Spec.Selector.MatchLabels
	}
	for _, c := range rs.Status.Conditions {
		rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rc
}
