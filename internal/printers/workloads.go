package printers

// Printers for workload controllers, ported from kubernetes/kubernetes v1.37.2
// pkg/printers/internalversion/printers.go (printDeployment, printReplicaSet,
// printReplicationController, layoutContainerCells), always with GenerateOptions{Wide: true}.
//
// Upstream only ever prints objects that went through v1 defaulting (on every decode, from the
// request body or from storage). Printed fields with defaults get them here too: a nil
// spec.replicas counts as 1, and a replication controller without a selector shows its
// template's labels.

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
	desired := desiredReplicas(d.Spec.Replicas)
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
		int64(desiredReplicas(rs.Spec.Replicas)),
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
	selector := rc.Spec.Selector
	if rc.Spec.Template != nil {
		containers = rc.Spec.Template.Spec.Containers
		// SetDefaults_ReplicationController: an empty selector defaults to the template's labels.
		if len(selector) == 0 && rc.Spec.Template.Labels != nil {
			selector = rc.Spec.Template.Labels
		}
	}
	names, images := layoutContainerCells(containers)
	return []any{
		rc.Name,
		int64(desiredReplicas(rc.Spec.Replicas)),
		int64(rc.Status.Replicas),
		int64(rc.Status.ReadyReplicas),
		age(rc.CreationTimestamp, now),
		names,
		images,
		labels.FormatLabels(selector),
	}
}

// desiredReplicas is spec.replicas after kube's defaulting (SetDefaults_Deployment,
// SetDefaults_ReplicaSet, and the declarative +default=1 of ReplicationControllerSpec).
func desiredReplicas(replicas *int32) int32 {
	if replicas == nil {
		return 1
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
