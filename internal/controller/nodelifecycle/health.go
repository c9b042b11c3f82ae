package nodelifecycle

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// Condition reasons and messages the controller writes, as upstream.
const (
	ReasonNodeStatusUnknown      = "NodeStatusUnknown"
	MessageNodeStatusUnknown     = "Kubelet stopped posting node status."
	ReasonNodeStatusNeverUpdated = "NodeStatusNeverUpdated"
	MessageNodeStatusNever       = "Kubelet never posted node status."
)

// nodeHealth is what the controller last observed of a node (upstream nodeHealthData).
type nodeHealth struct {
	// probe is when the node last showed a sign of life (heartbeat change or lease renewal).
	probe time.Time
	// ready is the Ready condition last observed.
	ready *corev1.NodeCondition
	// lease is the Lease last observed.
	lease *coordinationv1.Lease
}

func readyCondition(st *corev1.NodeStatus) *corev1.NodeCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.NodeReady {
			return &st.Conditions[i]
		}
	}
	return nil
}

// monitor checks every node's health (upstream monitorNodeHealth).
func (c *Controller) monitor(ctx context.Context) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.Name] = true
		if !c.knownNodes[n.Name] {
			c.knownNodes[n.Name] = true
			c.recorder.Eventf(nodeRef(n), corev1.EventTypeNormal, "RegisteredNode", "Registered Node %v in Controller", n.Name)
		}
		observed, current, err := c.updateHealthWithRetry(ctx, n)
		if err != nil {
			klog.FromContext(ctx).Error(err, "update node health, skipping (no pod will be evicted)", "node", n.Name)
			continue
		}
		if current == nil {
			continue
		}
		if current.Status != corev1.ConditionTrue && observed.Status == corev1.ConditionTrue {
			c.recorder.Eventf(nodeRef(n), corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
		}
		if err := c.syncNoExecuteTaints(ctx, n.Name, current.Status); err != nil {
			klog.FromContext(ctx).Error(err, "update NoExecute taints", "node", n.Name)
		}
		if current.Status != corev1.ConditionTrue {
			c.markPodsNotReady(ctx, n.Name)
		}
		c.scheduleEvictions(n.Name)
	}
	c.healthMu.Lock()
	for name := range c.health {
		if !seen[name] {
			delete(c.health, name)
			delete(c.knownNodes, name)
			delete(c.noExecuteSeen, name)
		}
	}
	c.healthMu.Unlock()
}

// nodeRef is the object node events refer to (upstream RecordNodeEvent uses the name as UID).
func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID}
}

// updateHealthWithRetry runs tryUpdateHealth, re-reading the node after a failed write.
func (c *Controller) updateHealthWithRetry(ctx context.Context, cached *corev1.Node) (corev1.NodeCondition, *corev1.NodeCondition, error) {
	node := cached.DeepCopy()
	var err error
	for range 5 {
		var observed corev1.NodeCondition
		var current *corev1.NodeCondition
		if observed, current, err = c.tryUpdateHealth(ctx, node); err == nil {
			return observed, current, nil
		}
		if node, err = c.client.CoreV1().Nodes().Get(ctx, cached.Name, metav1.GetOptions{}); err != nil {
			return corev1.NodeCondition{}, nil, err
		}
	}
	return corev1.NodeCondition{}, nil, err
}

// tryUpdateHealth updates the recorded health of node and, when the node showed no sign of
// life for the grace period, marks its conditions Unknown (upstream tryUpdateNodeHealth).
// It returns the Ready condition observed before and the current one.
func (c *Controller) tryUpdateHealth(ctx context.Context, node *corev1.Node) (corev1.NodeCondition, *corev1.NodeCondition, error) {
	now := c.clock.Now()
	c.healthMu.Lock()
	h := c.health[node.Name]
	c.healthMu.Unlock()
	current := readyCondition(&node.Status)
	var observed corev1.NodeCondition
	grace := c.grace
	if current == nil {
		observed = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: node.CreationTimestamp}
		grace = c.startupGrace
		if h == nil {
			h = &nodeHealth{probe: node.CreationTimestamp.Time}
		}
	} else {
		observed = *current
	}
	switch {
	case h == nil:
		h = &nodeHealth{probe: now}
	case (h.ready == nil) != (current == nil):
		h = &nodeHealth{probe: now, lease: h.lease}
	case h.ready != nil && current != nil && !h.ready.LastHeartbeatTime.Equal(&current.LastHeartbeatTime):
		h = &nodeHealth{probe: now, lease: h.lease}
	default:
		h = &nodeHealth{probe: h.probe, lease: h.lease}
	}
	if current != nil {
		h.ready = current.DeepCopy()
	}
	if lease, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name); err == nil &&
		(h.lease == nil || h.lease.Spec.RenewTime.Before(lease.Spec.RenewTime)) {
		h.lease = lease
		h.probe = now
	}
	defer func() {
		c.healthMu.Lock()
		c.health[node.Name] = h
		c.healthMu.Unlock()
	}()
	if !now.After(h.probe.Add(grace)) {
		return observed, current, nil
	}
	markUnknown(node, metav1.NewTime(now))
	current = readyCondition(&node.Status)
	if apiequality.Semantic.DeepEqual(current, &observed) {
		return observed, current, nil
	}
	updated, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err != nil {
		return observed, current, fmt.Errorf("set node %s conditions Unknown: %w", node.Name, err)
	}
	h.ready = readyCondition(&updated.Status).DeepCopy()
	klog.FromContext(ctx).V(2).Info("node stopped posting status", "node", node.Name, "since", h.probe)
	return observed, current, nil
}

// markUnknown sets Ready and the pressure conditions Unknown.
func markUnknown(node *corev1.Node, now metav1.Time) {
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		found := false
		for i := range node.Status.Conditions {
			cond := &node.Status.Conditions[i]
			if cond.Type != t {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionUnknown {
				cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = corev1.ConditionUnknown, ReasonNodeStatusUnknown, MessageNodeStatusUnknown, now
			}
		}
		if !found {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: ReasonNodeStatusNeverUpdated, Message: MessageNodeStatusNever,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now,
			})
		}
	}
}
