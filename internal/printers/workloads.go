package printers

// Printers for workload controllers, ported from kubernetes/kubernetes
// pkg/printers/internalversion/printers.go (printDeployment, printReplicaSet,
// printReplicationController, layoutContainerCells), always with GenerateOptions{Wide: true}.
//
// Upstream prints internal types, whose spec.replicas is a plain int32; the v1→internal
// conversion turns a nil v1 replicas into 0, which replicasOrZero reproduces.

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func deploymentCells(d *appsv1.Deployment, now time.Time) []any {
	desired := replicasOrZero(d.Spec.Replicas)
	// Unlike replica sets, deployments print selector.String() as is: "" for an empty selector
	// and "<invalid>" for one that does not parse.
	selectorString := "<invalid>"
	if selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selectorString = selector.String()
	}
	names, images := layoutContainerCells(d.Spec.Template.Spec.Containers)
	return []any{
		d.Name,
		fmt.Sprintf("%d/%d", int64(d.Status.ReadyReplicas), int64(desired)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
		names,
		images,
		selectorString,
	}
}

func replicaSetCells(rs *appsv1.ReplicaSet, now time.Time) []any {
	names, images := layoutContainerCells(rs.Spec.Template.Spec.Containers)
	return []any{
		rs.Name,
		int64(replicasOrZero(rs.Spec.Replicas)),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp, now),
		names,
		images,
		metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

func replicationControllerCells(rc *corev1.ReplicationController, now time.Time) []any {
	var containers []corev1.Container
	if rc.Spec.Template != nil {
		containers = rc.Spec.Template.Spec.Containers
	}
	names, images := layoutContainerCells(containers)
	return []any{
		rc.Name,
		int64(replicasOrZero(rc.Spec.Replicas)),
		int64(rc.Status.Replicas),
		int64(rc.Status.ReadyReplicas),
		age(rc.CreationTimestamp, now),
		names,
		images,
		labels.FormatLabels(rc.Spec.Selector),
	}
}

func replicasOrZero(replicas *int32) int32 {
	if replicas == nil {
		return 0
	}
	return *replicas
}

// layoutContainerCells joins the containers' names and images with commas.
func layoutContainerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i := range containers {
		n[i] = containers[i].Name
		im[i] = containers[i].Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}
