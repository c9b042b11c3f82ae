package nodelifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// markPodsNotReady sets the Ready condition of the node's pods False (upstream
// MarkPodsNotReady); pods that have no Ready condition are left alone.
func (c *Controller) markPodsNotReady(ctx context.Context, node string) {
	now := metav1.NewTime(c.clock.Now())
	for _, cached := range c.podsOn(node) {
		pod := cached.DeepCopy()
		changed := false
		for i := range pod.Status.Conditions {
			cond := &pod.Status.Conditions[i]
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionFalse {
				cond.Status, cond.LastTransitionTime = corev1.ConditionFalse, now
				changed = true
			}
		}
		if !changed {
			continue
		}
		_, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		switch {
		case err == nil:
			c.recorder.Event(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
		case !apierrors.IsNotFound(err):
			// Retried on the next monitor pass.
			klog.FromContext(ctx).V(2).Info("mark pod not ready", "pod", cache.MetaObjectToName(pod), "err", err)
		}
	}
}

// scheduleEvictions queues the node's pods whose eviction is due or scheduled.
func (c *Controller) scheduleEvictions(node string) {
	n, err := c.nodes.Get(node)
	if err != nil {
		return
	}
	now := c.clock.Now()
	for _, p := range c.podsOn(node) {
		if at, ok := c.evictionTime(n, p); ok {
			c.evictQueue.AddAfter(p.Namespace+"/"+p.Name, max(at.Sub(now), 0))
		}
	}
}

// syncEviction deletes one pod if its eviction is due, else queues it for then.
func (c *Controller) syncEviction(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if err != nil || pod.Spec.NodeName == "" {
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if err != nil {
		return nil
	}
	at, ok := c.evictionTime(node, pod)
	if !ok {
		return nil
	}
	if wait := at.Sub(c.clock.Now()); wait > 0 {
		c.evictQueue.AddAfter(key, wait)
		return nil
	}
	return c.evict(ctx, pod)
}

// evict marks the pod with the DisruptionTarget condition and deletes it (upstream
// addConditionAndDeletePod).
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", cache.MetaObjectToName(pod))
	cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager",
		Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: metav1.NewTime(c.clock.Now())}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{cond}}})
	if err != nil {
		return err
	}
	pods := c.client.CoreV1().Pods(pod.Namespace)
	if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("mark pod %s/%s for eviction: %w", pod.Namespace, pod.Name, err)
	}
	err = pods.Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// evictionTime is when pod must leave node because of its NoExecute taints (upstream
// taint eviction processPodOnNode), false when never. Pods get the default not-ready and
// unreachable tolerations of DefaultTolerationSeconds with PodEvictionTimeout.
func (c *Controller) evictionTime(node *corev1.Node, pod *corev1.Pod) (time.Time, bool) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return time.Time{}, false
	}
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			taints = append(taints, t)
		}
	}
	if len(taints) == 0 {
		c.healthMu.Lock()
		delete(c.noExecuteSeen, node.Name)
		c.healthMu.Unlock()
		return time.Time{}, false
	}
	tolerations := c.withDefaultTolerations(pod.Spec.Tolerations)
	var start time.Time
	minToleration := time.Duration(-1) // negative: forever
	for _, t := range taints {
		tol := matchingToleration(tolerations, &t)
		if tol == nil {
			return c.firstSeen(node.Name), true // untolerated: now
		}
		if t.TimeAdded != nil && t.TimeAdded.After(start) {
			start = t.TimeAdded.Time
		}
		if tol.TolerationSeconds == nil {
			continue
		}
		d := max(time.Duration(*tol.TolerationSeconds)*time.Second, 0)
		if minToleration < 0 || d < minToleration {
			minToleration = d
		}
	}
	if minToleration < 0 {
		return time.Time{}, false
	}
	if start.IsZero() {
		start = c.firstSeen(node.Name)
	}
	return start.Add(minToleration), true
}

// firstSeen is when the controller first saw NoExecute taints on the node.
func (c *Controller) firstSeen(node string) time.Time {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	t, ok := c.noExecuteSeen[node]
	if !ok {
		t = c.clock.Now()
		c.noExecuteSeen[node] = t
	}
	return t
}

func (c *Controller) withDefaultTolerations(tolerations []corev1.Toleration) []corev1.Toleration {
	notReady, unreachable := false, false
	for _, t := range tolerations {
		noExec := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		notReady = notReady || (noExec && (t.Key == corev1.TaintNodeNotReady || t.Key == ""))
		unreachable = unreachable || (noExec && (t.Key == corev1.TaintNodeUnreachable || t.Key == ""))
	}
	out := append([]corev1.Toleration(nil), tolerations...)
	secs := int64(c.evictionTimeout / time.Second)
	for key, has := range map[string]bool{corev1.TaintNodeNotReady: notReady, corev1.TaintNodeUnreachable: unreachable} {
		if !has {
			out = append(out, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs})
		}
	}
	return out
}

func matchingToleration(tolerations []corev1.Toleration, t *corev1.Taint) *corev1.Toleration {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(klog.Background(), t, false) {
			return &tolerations[i]
		}
	}
	return nil
}
