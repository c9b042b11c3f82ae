package nodelifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// conditionTaints maps node conditions to the NoSchedule taint they imply (upstream
// nodeConditionToTaintKeyStatusMap).
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// managedNoSchedule reports whether the controller owns a NoSchedule taint with key.
func managedNoSchedule(key string) bool {
	if key == corev1.TaintNodeUnschedulable {
		return true
	}
	for _, m := range conditionTaints {
		for _, k := range m {
			if k == key {
				return true
			}
		}
	}
	return false
}

// syncNoScheduleTaints makes the node's controller-owned NoSchedule taints match its
// conditions and spec.unschedulable (upstream doNoScheduleTaintingPass).
func (c *Controller) syncNoScheduleTaints(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, cond := range node.Status.Conditions {
		if key, ok := conditionTaints[cond.Type][cond.Status]; ok {
			want[key] = true
		}
	}
	if node.Spec.Unschedulable {
		want[corev1.TaintNodeUnschedulable] = true
	}
	have := map[string]bool{}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule && managedNoSchedule(t.Key) {
			have[t.Key] = true
		}
	}
	var add, del []corev1.Taint
	for k := range want {
		if !have[k] {
			add = append(add, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	for k := range have {
		if !want[k] {
			del = append(del, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	return c.swapTaints(ctx, name, add, del)
}

// syncNoExecuteTaints gives a node whose Ready condition is False the not-ready NoExecute
// taint, Unknown the unreachable one, and a Ready node neither (upstream
// doNoExecuteTaintingPass and markNodeAsReachable).
func (c *Controller) syncNoExecuteTaints(ctx context.Context, name string, ready corev1.ConditionStatus) error {
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	switch ready {
	case corev1.ConditionTrue:
		return c.swapTaints(ctx, name, nil, []corev1.Taint{notReady, unreachable})
	case corev1.ConditionFalse:
		return c.swapTaints(ctx, name, []corev1.Taint{notReady}, []corev1.Taint{unreachable})
	default:
		return c.swapTaints(ctx, name, []corev1.Taint{unreachable}, []corev1.Taint{notReady})
	}
}

// swapTaints adds (stamped with the clock's time) and removes taints by key and effect,
// writing the node only when something changes.
func (c *Controller) swapTaints(ctx context.Context, name string, add, del []corev1.Taint) error {
	if cached, err := c.nodes.Get(name); err == nil && !needsSwap(cached.Spec.Taints, add, del) {
		return nil
	}
	now := metav1.NewTime(c.clock.Now())
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !needsSwap(node.Spec.Taints, add, del) {
			return nil
		}
		var taints []corev1.Taint
		for _, t := range node.Spec.Taints {
			if !containsTaint(del, t) && !containsTaint(add, t) {
				taints = append(taints, t)
			}
		}
		for _, t := range add {
			if i := indexTaint(node.Spec.Taints, t); i >= 0 {
				taints = append(taints, node.Spec.Taints[i])
				continue
			}
			t.TimeAdded = &now
			taints = append(taints, t)
		}
		node.Spec.Taints = taints
		_, err = c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update taints of node %s: %w", name, err)
	}
	return nil
}

func needsSwap(taints, add, del []corev1.Taint) bool {
	for _, t := range add {
		if indexTaint(taints, t) < 0 {
			return true
		}
	}
	for _, t := range del {
		if indexTaint(taints, t) >= 0 {
			return true
		}
	}
	return false
}

func indexTaint(taints []corev1.Taint, t corev1.Taint) int {
	for i := range taints {
		if taints[i].MatchTaint(&t) {
			return i
		}
	}
	return -1
}

func containsTaint(taints []corev1.Taint, t corev1.Taint) bool { return indexTaint(taints, t) >= 0 }
