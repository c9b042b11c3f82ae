package replicaset

import (
	"context"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// statusUpdateRetries is how many times a failed status write is retried on a fresh read.
const statusUpdateRetries = 1

// calculateStatus computes rs's status from its active and terminating pods (upstream
// calculateStatus). manageErr sets or clears the ReplicaFailure condition.
func calculateStatus(rs *appsv1.ReplicaSet, active, terminating []*corev1.Pod, manageErr error, now time.Time, withTerminating bool) appsv1.ReplicaSetStatus {
	st := rs.Status
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var fully, ready, available int32
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if IsPodReady(p) {
			ready++
			if IsPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	st.TerminatingReplicas = nil
	if withTerminating {
		st.TerminatingReplicas = ptr.To(int32(len(terminating)))
	}
	failure := conditionIndex(st.Conditions, appsv1.ReplicaSetReplicaFailure) >= 0
	switch {
	case manageErr != nil && !failure:
		reason := ""
		if diff := len(active) - int(ptr.Deref(rs.Spec.Replicas, 1)); diff < 0 {
			reason = "FailedCreate"
		} else if diff > 0 {
			reason = "FailedDelete"
		}
		st.Conditions = append(append([]appsv1.ReplicaSetCondition(nil), st.Conditions...), appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error(),
		})
	case manageErr == nil && failure:
		var keep []appsv1.ReplicaSetCondition
		for _, c := range st.Conditions {
			if c.Type != appsv1.ReplicaSetReplicaFailure {
				keep = append(keep, c)
			}
		}
		st.Conditions = keep
	}
	st.Replicas = int32(len(active))
	st.FullyLabeledReplicas = fully
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	return st
}

func conditionIndex(conds []appsv1.ReplicaSetCondition, t appsv1.ReplicaSetConditionType) int {
	for i := range conds {
		if conds[i].Type == t {
			return i
		}
	}
	return -1
}

// updateStatus writes st unless it equals rs's status and observedGeneration is current
// (upstream updateReplicaSetStatus). rs is a private copy.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) (*appsv1.ReplicaSet, error) {
	cur := rs.Status
	if cur.Replicas == st.Replicas && cur.FullyLabeledReplicas == st.FullyLabeledReplicas &&
		cur.ReadyReplicas == st.ReadyReplicas && cur.AvailableReplicas == st.AvailableReplicas &&
		ptr.Equal(cur.TerminatingReplicas, st.TerminatingReplicas) &&
		rs.Generation == cur.ObservedGeneration && reflect.DeepEqual(cur.Conditions, st.Conditions) {
		return rs, nil
	}
	st.ObservedGeneration = rs.Generation
	var err error
	for i := 0; ; i++ {
		rs.Status = st
		var updated *appsv1.ReplicaSet
		if updated, err = c.kind.updateStatus(ctx, rs); err == nil {
			return updated, nil
		}
		if i >= statusUpdateRetries {
			break
		}
		fresh, getErr := c.kind.getLive(ctx, rs.Namespace, rs.Name)
		if getErr != nil {
			return nil, fmt.Errorf("update status of %s: %w", keyOf(rs), getErr)
		}
		rs = fresh.DeepCopy()
	}
	return nil, fmt.Errorf("update status of %s: %w", keyOf(rs), err)
}
