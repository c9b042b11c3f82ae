package agent

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"kubesvc/internal/runtime/podnet"
)

// Version is what the agent reports as its kubelet and runtime version.
const Version = "v1.37.2-kubesvc"

// maxPods is the node's pod capacity (the kubelet's default).
const maxPods = 110

// heartbeatPeriod is how often the Node's Ready heartbeat is refreshed even without changes
// (the kubelet's nodeStatusReportFrequency is 5 min; a Lease renewal is the liveness signal).
const heartbeatPeriod = time.Minute

func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:         a.nodeName,
		corev1.LabelOSStable:         "linux",
		corev1.LabelArchStable:       goruntime.GOARCH,
		"beta.kubernetes.io/os":      "linux",
		"beta.kubernetes.io/arch":    goruntime.GOARCH,
		"node.kubernetes.io/kubesvc": "true",
	}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	return l
}

// capacity is the node's resources: CPUs, memory, pods, ephemeral storage of the data dir.
func (a *Agent) capacity() corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:  *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods: *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	if kb := memTotalKiB(); kb > 0 {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(kb*1024, resource.BinarySI)
	}
	var st unix.Statfs_t
	if unix.Statfs(a.cfg.DataDir, &st) == nil {
		rl[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI)
	}
	rl["hugepages-1Gi"] = resource.MustParse("0")
	rl["hugepages-2Mi"] = resource.MustParse("0")
	return rl
}

func memTotalKiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
			return kb
		}
	}
	return 0
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func osImage() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func (a *Agent) nodeInfo() corev1.NodeSystemInfo {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return corev1.NodeSystemInfo{
		MachineID:               readTrim("/etc/machine-id"),
		SystemUUID:              readTrim("/sys/class/dmi/id/product_uuid"),
		BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           unix.ByteSliceToString(u.Release[:]),
		OSImage:                 osImage(),
		ContainerRuntimeVersion: "kubesvc://" + Version,
		KubeletVersion:          Version,
		OperatingSystem:         "linux",
		Architecture:            goruntime.GOARCH,
	}
}

// nodeConditions are the kubelet's four conditions, Ready as given.
func nodeConditions(ready bool, now metav1.Time, old []corev1.NodeCondition) []corev1.NodeCondition {
	readyCond := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !ready {
		readyCond = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime status check may not have completed yet"}
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		readyCond,
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return conds
}

// nodeStatus is the status the agent posts, keeping old's transition times.
func (a *Agent) nodeStatus(ready bool, old *corev1.NodeStatus) corev1.NodeStatus {
	capacity := a.capacity()
	var oldConds []corev1.NodeCondition
	if old != nil {
		oldConds = old.Conditions
	}
	st := corev1.NodeStatus{
		Capacity:        capacity,
		Allocatable:     capacity.DeepCopy(),
		Conditions:      nodeConditions(ready, metav1.Now(), oldConds),
		Addresses:       a.nodeAddresses(),
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.KubeletPort)}},
		NodeInfo:        a.nodeInfo(),
	}
	if old != nil {
		st.Images, st.VolumesInUse, st.VolumesAttached = old.Images, old.VolumesInUse, old.VolumesAttached
	}
	return st
}

// registerNode creates the Node or, when it exists (a restart), refreshes its labels and
// status (not Ready until the runtime is up).
func (a *Agent) registerNode(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.nodeName, Labels: a.nodeLabels()},
		Status:     a.nodeStatus(false, nil),
	}
	_, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		return a.postNodeStatus(ctx, false)
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("agent: register node %s: %w", a.nodeName, err)
	}
	existing, err := nodes.Get(ctx, a.nodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("agent: get node %s: %w", a.nodeName, err)
	}
	changed := false
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	for k, v := range a.nodeLabels() {
		if existing.Labels[k] != v {
			existing.Labels[k], changed = v, true
		}
	}
	if changed {
		if existing, err = nodes.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("agent: update node %s: %w", a.nodeName, err)
		}
	}
	ready := false
	for _, c := range existing.Status.Conditions {
		// Keep Ready through an agent restart: the pods keep running.
		ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	}
	return a.postNodeStatus(ctx, ready)
}

// postNodeStatus writes the node's status on a fresh copy, retrying conflicts (the node IPAM
// and lifecycle controllers write the Node too).
func (a *Agent) postNodeStatus(ctx context.Context, ready bool) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status = a.nodeStatus(ready, &n.Status)
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("agent: post status of node %s: %w", a.nodeName, err)
	}
	return nil
}

// waitPodCIDR waits until the server's node IPAM has assigned the node a podCIDR.
func (a *Agent) waitPodCIDR(ctx context.Context) (netip.Prefix, error) {
	deadline := time.Now().Add(DefaultPodCIDRWaitTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.nodeName, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(node.Spec.PodCIDR)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("agent: node podCIDR %q: %w", node.Spec.PodCIDR, err)
			}
			return p.Masked(), nil
		}
		if time.Now().After(deadline) {
			return netip.Prefix{}, fmt.Errorf("agent: node %s got no podCIDR in %s (is the server's nodeipam controller running?)", a.nodeName, DefaultPodCIDRWaitTimeout)
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// setNodeReady posts Ready=True.
func (a *Agent) setNodeReady(ctx context.Context) error {
	return a.postNodeStatus(ctx, true)
}

// nodeStatusLoop re-posts the status when it drifted (another component set Ready Unknown,
// addresses changed) or its heartbeat is older than heartbeatPeriod.
func (a *Agent) nodeStatusLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.NodeStatusPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		node, err := a.factory.Core().V1().Nodes().Lister().Get(a.nodeName)
		if err != nil {
			if apierrors.IsNotFound(err) {
				// Deleted: register again, like a kubelet.
				if err := a.registerNode(ctx); err == nil {
					_ = a.setNodeReady(ctx)
				}
			}
			continue
		}
		if !a.nodeStatusStale(node) {
			continue
		}
		if err := a.postNodeStatus(ctx, true); err != nil {
			klog.ErrorS(err, "agent: update node status", "node", a.nodeName)
		}
	}
}

func (a *Agent) nodeStatusStale(node *corev1.Node) bool {
	var ready *corev1.NodeCondition
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &node.Status.Conditions[i]
		}
	}
	if ready == nil || ready.Status != corev1.ConditionTrue || time.Since(ready.LastHeartbeatTime.Time) > heartbeatPeriod {
		return true
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(a.KubeletPort) {
		return true
	}
	return !slices.Equal(node.Status.Addresses, a.nodeAddresses())
}

// nodeAddresses are the Node's status.addresses: an InternalIP per --node-ip address (the
// primary first, as the kubelet) and the Hostname.
func (a *Agent) nodeAddresses() []corev1.NodeAddress {
	out := make([]corev1.NodeAddress, 0, len(a.nodeIPs)+1)
	for _, ip := range a.nodeIPs {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: a.nodeName})
}

// leaseLoop renews kube-node-lease/<node> every quarter of the lease duration (10 s), creating
// it when missing, owned by the Node like the kubelet's.
func (a *Agent) leaseLoop(ctx context.Context) {
	period := time.Duration(a.cfg.LeaseDurationSeconds) * time.Second / 4
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "agent: renew node lease", "node", a.nodeName)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, a.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.nodeName, Namespace: corev1.NamespaceNodeLease, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(a.nodeName), LeaseDurationSeconds: ptr.To(a.cfg.LeaseDurationSeconds), RenewTime: &now,
			},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(a.nodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(a.cfg.LeaseDurationSeconds)
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// routeLoop keeps a direct route to every other node's podCIDR via its InternalIP (nodes on
// one L2 segment), on node events and every 30 s.
func (a *Agent) routeLoop(ctx context.Context) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		if err := podnet.SyncRoutes(a.desiredRoutes()); err != nil {
			klog.ErrorS(err, "agent: routes to other nodes")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.routes:
		}
	}
}

func (a *Agent) desiredRoutes() []podnet.Route {
	nodes, err := a.factory.Core().V1().Nodes().Lister().List(everything)
	if err != nil {
		return nil
	}
	var routes []podnet.Route
	for _, n := range nodes {
		if n.Name == a.nodeName || n.Spec.PodCIDR == "" {
			continue
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || cidr.Overlaps(a.podCIDR) {
			continue
		}
		for _, ad := range n.Status.Addresses {
			if ad.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(ad.Address); err == nil && ip.Is4() == cidr.Addr().Is4() && !slices.Contains(a.nodeIPs, ip) {
				routes = append(routes, podnet.Route{Dst: cidr, Via: ip})
				break
			}
		}
	}
	return routes
}

// nodeEvents pokes the route loop on node changes.
func (a *Agent) nodeEvents() cache.ResourceEventHandler {
	poke := func(any) {
		select {
		case a.routes <- struct{}{}:
		default:
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, n any) { poke(n) }, DeleteFunc: poke}
}
