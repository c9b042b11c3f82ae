package namespace

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"kubesvc/internal/resource"
)

// content is what one pass over a namespace found and did.
type content struct {
	// remaining counts the objects still present per resource.
	remaining map[schema.GroupVersionResource]int
	// finalizers counts the remaining objects per finalizer they carry.
	finalizers map[string]int
	// errs are the per-resource failures (ContentDeletionFailed).
	errs []error
	// retryAfter is the time to the next pod force-deletion deadline, 0 if none.
	retryAfter time.Duration
}

func (r *content) total() int {
	n := 0
	for _, v := range r.remaining {
		n += v
	}
	return n
}

func (r *content) wakeIn(d time.Duration) {
	if r.retryAfter == 0 || d < r.retryAfter {
		r.retryAfter = d
	}
}

// deleteAllContent deletes every object of every resource in namespace ns (background
// propagation, so dependents are left to the garbage collector as upstream does) and reports
// what remains.
func (c *Controller) deleteAllContent(ctx context.Context, ns string) *content {
	res := &content{remaining: map[schema.GroupVersionResource]int{}, finalizers: map[string]int{}}
	for _, info := range c.resources {
		if err := c.deleteResource(ctx, ns, info, res); err != nil {
			res.errs = append(res.errs, err)
		}
	}
	return res
}

var podsResource = corev1.SchemeGroupVersion.WithResource("pods")

func (c *Controller) deleteResource(ctx context.Context, ns string, info *resource.Info, res *content) error {
	gvr := info.GroupVersionResource
	rc := c.metadata.Resource(gvr).Namespace(ns)
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	if slices.Contains(info.Verbs, "deletecollection") {
		if err := rc.DeleteCollection(ctx, opts, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete collection of %s in %s: %w", info.GroupResource(), ns, err)
		}
	} else if err := deleteEach(ctx, rc, opts); err != nil {
		return fmt.Errorf("delete %s in %s: %w", info.GroupResource(), ns, err)
	}
	list, err := rc.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list %s in %s: %w", info.GroupResource(), ns, err)
	}
	items := list.Items
	if gvr == podsResource && len(items) > 0 {
		if items, err = c.forceDeletePods(ctx, rc, ns, items, res); err != nil {
			return fmt.Errorf("force-delete pods in %s: %w", ns, err)
		}
	}
	if len(items) > 0 {
		res.remaining[gvr] = len(items)
	}
	for _, it := range items {
		for _, f := range it.Finalizers {
			res.finalizers[f]++
		}
	}
	return nil
}

// deleteEach deletes the objects of a resource without deletecollection one by one.
func deleteEach(ctx context.Context, rc metadata.ResourceInterface, opts metav1.DeleteOptions) error {
	list, err := rc.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, it := range list.Items {
		if it.DeletionTimestamp != nil {
			continue
		}
		if err := rc.Delete(ctx, it.Name, opts); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// forceDeletePods deletes with gracePeriodSeconds=0 (and a UID precondition) every pod that
// is still present ForceDeletePodsAfter past its deletionTimestamp (the end of its grace
// period) and whose node is missing or not Ready: no live node agent will finish it, so it is
// cleaned up the way pod GC cleans up the pods of a dead node. Pods on a Ready node are left
// to its agent. It returns the pods left.
func (c *Controller) forceDeletePods(ctx context.Context, rc metadata.ResourceInterface, ns string, pods []metav1.PartialObjectMetadata, res *content) ([]metav1.PartialObjectMetadata, error) {
	now := c.clock.Now()
	zero := int64(0)
	nodeLost := map[string]bool{}
	var left []metav1.PartialObjectMetadata
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			left = append(left, p)
			continue
		}
		if deadline := p.DeletionTimestamp.Add(c.forceAfter); now.Before(deadline) {
			res.wakeIn(deadline.Sub(now))
			left = append(left, p)
			continue
		}
		if g := p.DeletionGracePeriodSeconds; g != nil && *g == 0 {
			left = append(left, p) // already forced; only finalizers hold it
			continue
		}
		lost, err := c.podNodeLost(ctx, ns, p.Name, nodeLost)
		if err != nil {
			return nil, err
		}
		if !lost {
			left = append(left, p)
			continue
		}
		uid := p.UID
		err = rc.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// gone, or replaced by a new pod of the same name
		case err != nil:
			return nil, err
		case len(p.Finalizers) > 0:
			left = append(left, p)
		}
	}
	return left, nil
}

// podNodeLost reports whether the pod's node is missing or not Ready (memoized per node in
// lost). Unbound or vanished pods count as lost: deleting them cannot wait for anyone.
func (c *Controller) podNodeLost(ctx context.Context, ns, name string, lost map[string]bool) (bool, error) {
	pod, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	nodeName := pod.Spec.NodeName
	if nodeName == "" {
		return true, nil
	}
	if v, ok := lost[nodeName]; ok {
		return v, nil
	}
	node, err := c.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		lost[nodeName] = true
	case err != nil:
		return false, err
	default:
		ready := slices.ContainsFunc(node.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		})
		lost[nodeName] = !ready
	}
	return lost[nodeName], nil
}

// Namespace condition types maintained here, with their "ok" reasons and messages (upstream
// status_condition_utils.go).
var (
	conditionTypes = []corev1.NamespaceConditionType{
		corev1.NamespaceDeletionDiscoveryFailure,
		corev1.NamespaceDeletionGVParsingFailure,
		corev1.NamespaceDeletionContentFailure,
		corev1.NamespaceContentRemaining,
		corev1.NamespaceFinalizersRemaining,
	}
	okMessages = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "All resources successfully discovered",
		corev1.NamespaceDeletionGVParsingFailure: "All legacy kube types successfully parsed",
		corev1.NamespaceDeletionContentFailure:   "All content successfully deleted, may be waiting on finalization",
		corev1.NamespaceContentRemaining:         "All content successfully removed",
		corev1.NamespaceFinalizersRemaining:      "All content successfully removed",
	}
	okReasons = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "ResourcesDiscovered",
		corev1.NamespaceDeletionGVParsingFailure: "ParsedGroupVersions",
		corev1.NamespaceDeletionContentFailure:   "ContentDeleted",
		corev1.NamespaceContentRemaining:         "ContentRemoved",
		corev1.NamespaceFinalizersRemaining:      "ContentRemoved",
	}
)

// conditions returns the failing conditions of this pass (status True); the others are set
// to their "ok" variant by updateConditions.
func (r *content) conditions() []corev1.NamespaceCondition {
	var out []corev1.NamespaceCondition
	if len(r.errs) > 0 {
		msgs := make([]string, 0, len(r.errs))
		for _, e := range r.errs {
			msgs = append(msgs, e.Error())
		}
		sort.Strings(msgs)
		out = append(out, corev1.NamespaceCondition{
			Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionTrue, Reason: "ContentDeletionFailed",
			Message: fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(r.errs), strings.Join(msgs, ", ")),
		})
	}
	if len(r.remaining) > 0 {
		var parts []string
		for gvr, n := range r.remaining {
			parts = append(parts, fmt.Sprintf("%s.%s has %d resource instances", gvr.Resource, gvr.Group, n))
		}
		sort.Strings(parts)
		out = append(out, corev1.NamespaceCondition{
			Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain",
			Message: "Some resources are remaining: " + strings.Join(parts, ", "),
		})
	}
	if len(r.finalizers) > 0 {
		var parts []string
		for f, n := range r.finalizers {
			parts = append(parts, fmt.Sprintf("%s in %d resource instances", f, n))
		}
		sort.Strings(parts)
		out = append(out, corev1.NamespaceCondition{
			Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue, Reason: "SomeFinalizerRemain",
			Message: "Some finalizers are remaining: " + strings.Join(parts, ", "),
		})
	}
	return out
}

// updateConditions merges failing into status: every maintained type gets the failing
// condition or its "ok" variant; LastTransitionTime changes only with Status. It reports
// whether anything changed.
func updateConditions(status *corev1.NamespaceStatus, failing []corev1.NamespaceCondition, now time.Time) bool {
	changed := false
	for _, t := range conditionTypes {
		want := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReasons[t], Message: okMessages[t]}
		if i := slices.IndexFunc(failing, func(c corev1.NamespaceCondition) bool { return c.Type == t }); i >= 0 {
			want = failing[i]
		}
		want.LastTransitionTime = metav1.NewTime(now)
		i := slices.IndexFunc(status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == t })
		if i < 0 {
			status.Conditions = append(status.Conditions, want)
			changed = true
			continue
		}
		cur := &status.Conditions[i]
		if cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message {
			continue
		}
		if cur.Status == want.Status {
			want.LastTransitionTime = cur.LastTransitionTime
		}
		*cur = want
		changed = true
	}
	return changed
}
