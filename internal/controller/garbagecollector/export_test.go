package garbagecollector

import "k8s.io/apimachinery/pkg/types"

// Knows reports whether the graph holds a non-virtual node for uid: the collector has
// observed the object itself, not only a reference to it.
func (c *Controller) Knows(uid types.UID) bool {
	c.graph.mu.RLock()
	defer c.graph.mu.RUnlock()
	n, ok := c.graph.nodes[uid]
	return ok && !n.virtual
}
