package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// sync reconciles one object (upstream syncReplicaSet): claim pods, create or delete pods
// when no earlier creations or deletions are pending, then write the status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.kind.get(ns, name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	needsSync := c.exp.satisfied(key)
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || sel.Empty() {
		// Validation forbids both; never treat an empty selector as "every pod".
		klog.FromContext(ctx).Info("ignoring object with an invalid selector", "kind", c.kind.gvk().Kind, "key", key)
		return nil
	}
	all, err := c.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var candidates, terminating []*corev1.Pod
	for _, p := range all {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref != nil && ref.UID != rs.UID {
			continue
		}
		switch {
		case isPodActive(p):
			candidates = append(candidates, p)
		case isPodTerminating(p) && ref != nil && sel.Matches(labels.Set(p.Labels)):
			terminating = append(terminating, p)
		}
	}
	active, err := c.claimPods(ctx, rs, sel, candidates)
	if err != nil {
		return err
	}
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, active, rs)
	}
	now := c.clock.Now()
	status := calculateStatus(rs, active, terminating, manageErr, now, c.kind.terminatingReplicas())
	updated, err := c.updateStatus(ctx, rs.DeepCopy(), status)
	if err != nil {
		return err
	}
	if manageErr != nil {
		return manageErr
	}
	if mrs := updated.Spec.MinReadySeconds; mrs > 0 && updated.Status.ReadyReplicas != updated.Status.AvailableReplicas {
		next := nextAvailabilityCheck(active, mrs, now)
		if next <= 0 {
			next = time.Duration(mrs) * time.Second
		}
		c.queue.AddAfter(key, next)
	}
	return nil
}

// manageReplicas creates or deletes pods so that len(active) approaches spec.replicas, at
// most BurstReplicas per sync.
func (c *Controller) manageReplicas(ctx context.Context, active []*corev1.Pod, rs *appsv1.ReplicaSet) error {
	key := keyOf(rs)
	diff := len(active) - int(ptr.Deref(rs.Spec.Replicas, 1))
	logger := klog.FromContext(ctx)
	switch {
	case diff < 0:
		n := min(-diff, c.burst)
		c.exp.expectCreations(key, n)
		logger.V(2).Info("too few replicas", "kind", c.kind.gvk().Kind, "key", key, "creating", n)
		created, err := slowStartBatch(n, 1, func() error { return c.createPod(ctx, rs) })
		for range n - created {
			c.exp.creationObserved(key)
		}
		return err
	case diff > 0:
		n := min(diff, c.burst)
		logger.V(2).Info("too many replicas", "kind", c.kind.gvk().Kind, "key", key, "deleting", n)
		victims := podsToDelete(active, c.relatedPods(rs), n, c.clock.Now())
		keys := make([]string, 0, len(victims))
		for _, p := range victims {
			keys = append(keys, keyOf(p))
		}
		c.exp.expectDeletions(key, keys)
		return c.deletePods(ctx, rs, victims)
	}
	return nil
}

func (c *Controller) deletePods(ctx context.Context, rs *appsv1.ReplicaSet, victims []*corev1.Pod) error {
	var wg sync.WaitGroup
	errs := make([]error, len(victims))
	for i, p := range victims {
		wg.Go(func() {
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			if err == nil {
				c.recorder.Eventf(c.kind.eventObject(rs), corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
				return
			}
			// The informer will not report this deletion.
			c.exp.deletionObserved(keyOf(rs), keyOf(p))
			if !apierrors.IsNotFound(err) {
				c.recorder.Eventf(c.kind.eventObject(rs), corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				errs[i] = fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// relatedPods returns the pods of every ReplicaSet with the same controller as rs (the
// ReplicaSets of one Deployment), used to rank pods by colocation.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil {
		return nil
	}
	siblings, err := c.kind.list(rs.Namespace)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []*corev1.Pod
	for _, s := range siblings {
		if r := metav1.GetControllerOfNoCopy(s); r == nil || r.UID != ref.UID {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		pods, err := c.podLister.Pods(s.Namespace).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if !seen[string(p.UID)] {
				seen[string(p.UID)] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// createPod creates one pod from rs's template (upstream RealPodControl.CreatePods).
func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod := PodFromTemplate(&rs.Spec.Template, rs, metav1.NewControllerRef(rs, c.kind.gvk()))
	if len(pod.Labels) == 0 {
		return errors.New("unable to create pods, no labels")
	}
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			// Every creation fails in a namespace being deleted; nothing to do.
			return nil
		}
		c.recorder.Eventf(c.kind.eventObject(rs), corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod for %s: %w", keyOf(rs), err)
	}
	c.recorder.Eventf(c.kind.eventObject(rs), corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// PodFromTemplate returns the pod a controller creates from template: its labels,
// annotations, finalizers and spec, generateName "<owner>-" and the owner reference
// (upstream controller.GetPodFromTemplate).
func PodFromTemplate(template *corev1.PodTemplateSpec, owner metav1.Object, ref *metav1.OwnerReference) *corev1.Pod {
	t := template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:       t.Labels,
			Annotations:  t.Annotations,
			Finalizers:   t.Finalizers,
			GenerateName: owner.GetName() + "-",
			Namespace:    owner.GetNamespace(),
		},
		Spec: t.Spec,
	}
	if ref != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	return pod
}

// slowStartBatch calls fn count times in batches of 1, 2, 4, ... concurrent calls, stopping
// after the first batch with a failure (upstream slowStartBatch: a quota error costs one
// call, not hundreds). It returns the number of successful calls and the first error.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, successes := count, 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		successes += batch - len(errs)
		if len(errs) > 0 {
			return successes, <-errs
		}
		remaining -= batch
	}
	return successes, nil
}
