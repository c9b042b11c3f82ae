package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent/dnsconfig"
	"kubesvc/internal/runtime"
)

// podWorker runs one pod, like the kubelet's pod worker: every change (a new pod version, a
// container exit, a probe result, a back-off timer) triggers sync on the worker's goroutine,
// so the pod's containers and status are only touched there.
type podWorker struct {
	a         *Agent
	uid       types.UID
	namespace string
	name      string
	poke      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	mu      sync.Mutex
	pod     *corev1.Pod // latest version from the informer
	removed bool        // the pod is gone from the API

	// adopted is set when the worker found containers of a previous agent: their exits are
	// only noticed by polling (relist).
	adopted atomic.Bool

	// Owned by the worker goroutine.
	sandbox    *runtime.Sandbox
	ctrs       map[string]*ctr
	startTime  *metav1.Time
	wake       *time.Timer
	sandboxErr string
	// sandboxKey is what the sandbox was made for (hostname, DNS settings).
	sandboxKey     string
	sandboxChecked time.Time
	terminated     bool // containers stopped and sandbox removed
	apiDeleted     bool // the final delete was sent
	lastPosted     *corev1.PodStatus
	postedFrom     string // resourceVersion the last status was computed from
	postedRV       string // resourceVersion the API gave it
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	w := &podWorker{
		a: a, uid: pod.UID, namespace: pod.Namespace, name: pod.Name,
		poke: make(chan struct{}, 1), done: make(chan struct{}), ctrs: map[string]*ctr{},
	}
	w.ctx, w.cancel = context.WithCancel(a.ctx)
	w.load()
	a.wg.Add(1)
	go w.run()
	return w
}

// load adopts what the runtime has for this pod (after an agent restart).
func (w *podWorker) load() {
	w.sandbox = w.a.rt.Sandbox(string(w.uid))
	cs, err := w.a.rt.Containers(string(w.uid))
	if err != nil {
		klog.ErrorS(err, "agent: read containers", "pod", w.key())
	}
	for name, attempts := range cs {
		c := w.ctr(name)
		c.attempts = attempts
		w.adopted.Store(true)
	}
}

func (w *podWorker) key() string { return w.namespace + "/" + w.name }

func (w *podWorker) ctr(name string) *ctr {
	c, ok := w.ctrs[name]
	if !ok {
		c = &ctr{name: name}
		w.ctrs[name] = c
	}
	return c
}

// update records a new version of the pod (or its removal from the API) and pokes the worker.
func (w *podWorker) update(pod *corev1.Pod, removed bool) {
	w.mu.Lock()
	w.pod = pod
	w.removed = w.removed || removed
	w.mu.Unlock()
	w.kick()
}

// kick asks the worker to sync.
func (w *podWorker) kick() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// stop ends the worker without touching the pod (agent shutdown).
func (w *podWorker) stop() {
	w.cancel()
	<-w.done
}

func (w *podWorker) snapshot() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.removed
}

func (w *podWorker) run() {
	defer w.a.wg.Done()
	defer close(w.done)
	defer w.stopProbes()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.poke:
		}
		if finished := w.sync(); finished {
			w.a.workerDone(w.uid)
			return
		}
	}
}

// after schedules a sync in d (the earliest pending one wins).
func (w *podWorker) after(d time.Duration) {
	if w.wake != nil {
		w.wake.Stop()
	}
	w.wake = time.AfterFunc(d, w.kick)
}

// sync brings the pod's containers and status in line with its spec; it reports true when
// the worker is finished (the pod is gone and everything is cleaned up).
func (w *podWorker) sync() bool {
	pod, removed := w.snapshot()
	switch {
	case removed:
		// Deleted from the API (forced, or our own final delete): stop everything.
		w.terminate(pod, false)
		return true
	case pod.DeletionTimestamp != nil:
		if !w.apiDeleted {
			w.terminate(pod, true)
		}
		return false
	case isTerminal(pod.Status.Phase):
		if !w.terminated {
			w.killAll(pod, 0, "")
			w.releaseNetwork()
		}
		return false
	}
	if w.startTime == nil {
		if pod.Status.StartTime != nil {
			w.startTime = pod.Status.StartTime.DeepCopy()
		} else {
			w.startTime = ptr.To(metav1.Now())
		}
	}
	if err := w.ensureSandbox(pod); err != nil {
		w.sandboxErr = err.Error()
		klog.ErrorS(err, "agent: pod sandbox", "pod", w.key())
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		w.postStatus(pod, w.status(pod))
		w.after(5 * time.Second)
		return false
	}
	w.sandboxErr = ""
	w.syncContainers(pod)
	st := w.status(pod)
	w.postStatus(pod, st)
	if isTerminal(st.Phase) {
		w.stopProbes()
		w.releaseNetwork()
	}
	return false
}

func isTerminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// sandboxRecheck is how often a pod's sandbox (namespace, veth) is verified and repaired when
// nothing about it changed.
const sandboxRecheck = 30 * time.Second

// ensureSandbox creates or repairs the pod's network namespace, IP and /etc files. When the
// sandbox exists and nothing it depends on changed, it only re-verifies it every
// sandboxRecheck.
func (w *podWorker) ensureSandbox(pod *corev1.Pod) error {
	a := w.a
	hostname, err := dnsconfig.KernelHostname(pod, a.dns.ClusterDomain)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s|%v|%v|%s|%v|%s|%v", hostname, pod.Spec.HostNetwork, pod.Spec.DNSPolicy, pod.Spec.Subdomain,
		pod.Spec.DNSConfig, pod.Spec.Hostname, pod.Spec.HostAliases)
	if w.sandbox != nil && key == w.sandboxKey && time.Since(w.sandboxChecked) < sandboxRecheck {
		return nil
	}
	sb, created, err := a.rt.EnsureSandbox(runtime.SandboxConfig{
		UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
		HostNetwork: pod.Spec.HostNetwork, Hostname: hostname, HostIP: a.nodeIP,
	})
	if err != nil {
		return err
	}
	if created && w.sandbox != nil {
		// A new network namespace: containers in the old one must start over.
		w.killAll(pod, 0, "")
	}
	w.sandbox = sb
	resolv := dnsconfig.PodResolv(pod, a.dns).Format()
	var hosts []byte
	if pod.Spec.HostNetwork {
		nodeHosts, _ := os.ReadFile("/etc/hosts")
		hosts = dnsconfig.HostNetworkHostsFile(pod, nodeHosts)
		hostname, _ = os.Hostname()
	} else {
		hosts = dnsconfig.HostsFile(pod, []string{sb.IP.String()}, a.dns.ClusterDomain)
	}
	for name, data := range map[string][]byte{"resolv.conf": resolv, "hosts": hosts, "hostname": []byte(hostname + "\n")} {
		if err := a.rt.WriteEtc(sb, name, data); err != nil {
			return err
		}
	}
	w.sandboxKey, w.sandboxChecked = key, time.Now()
	return nil
}

// releaseNetwork frees the network of a terminal pod; its logs stay until it is deleted.
func (w *podWorker) releaseNetwork() {
	if w.terminated {
		return
	}
	if err := w.a.rt.ReleaseNetwork(string(w.uid)); err != nil {
		klog.ErrorS(err, "agent: release pod network", "pod", w.key())
	}
	w.terminated = true
}

// teardown removes the sandbox of a pod whose containers have all ended, with its logs.
func (w *podWorker) teardown() {
	if err := w.a.rt.RemoveSandbox(string(w.uid)); err != nil {
		klog.ErrorS(err, "agent: remove pod sandbox", "pod", w.key())
	}
	w.terminated = true
}

// podIPs returns the pod's IPs ([] without a sandbox).
func (w *podWorker) podIPs() []string {
	if w.sandbox == nil || !w.sandbox.IP.IsValid() {
		return nil
	}
	return []string{w.sandbox.IP.String()}
}

// podIP returns the pod IP (the node IP for host-network pods).
func (w *podWorker) podIP() netip.Addr {
	if w.sandbox == nil {
		return netip.Addr{}
	}
	return w.sandbox.IP
}

// terminate stops the pod gracefully (preStop hooks, SIGTERM, the grace period, SIGKILL),
// posts its final status and, when the API still has it, deletes it with grace period 0 and a
// UID precondition (finishing the graceful deletion).
func (w *podWorker) terminate(pod *corev1.Pod, viaAPI bool) {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	}
	w.stopProbes()
	if !w.terminated {
		w.killAll(pod, time.Duration(grace)*time.Second, "Stopping container %s")
	}
	if !viaAPI {
		w.teardown()
		return
	}
	st := w.status(pod)
	st.Phase = corev1.PodSucceeded
	for _, cs := range st.ContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			st.Phase = corev1.PodFailed
		}
	}
	if len(st.ContainerStatuses) == 0 {
		st.Phase = corev1.PodFailed
	}
	st.Conditions = w.conditions(pod, st)
	w.postStatus(pod, st)
	w.teardown()
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err):
		w.apiDeleted = true
	default:
		klog.ErrorS(err, "agent: delete terminated pod", "pod", w.key())
		w.after(2 * time.Second)
	}
}

// postStatus sends st if it differs from the API's status of pod, retrying conflicts on a
// fresh copy. A status equal to the one last sent is not sent again while the informer has not
// delivered a newer pod.
func (w *podWorker) postStatus(pod *corev1.Pod, st corev1.PodStatus) {
	normalizeStatus(&st)
	if statusEqual(&pod.Status, &st) {
		return
	}
	if w.lastPosted != nil && statusEqual(w.lastPosted, &st) && (pod.ResourceVersion == w.postedFrom || pod.ResourceVersion == w.postedRV) {
		return
	}
	pods := w.a.client.CoreV1().Pods(pod.Namespace)
	cur := pod.DeepCopy()
	for try := 0; try < 3; try++ {
		ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
		cur.Status = st
		updated, err := pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		cancel()
		if err == nil {
			w.lastPosted, w.postedFrom, w.postedRV = st.DeepCopy(), pod.ResourceVersion, updated.ResourceVersion
			return
		}
		if apierrors.IsNotFound(err) || w.ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			klog.ErrorS(err, "agent: update pod status", "pod", w.key())
			w.after(time.Second)
			return
		}
		ctx, cancel = context.WithTimeout(w.ctx, 15*time.Second)
		fresh, gerr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		cancel()
		if gerr != nil || fresh.UID != pod.UID {
			return
		}
		cur = fresh
	}
	w.after(time.Second)
}

// errNoSandbox is reported for exec and logs of a pod without a sandbox.
var errNoSandbox = errors.New("pod has no sandbox")

func formatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
