package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"kubesvc/internal/agent/dnsconfig"
	"kubesvc/internal/agent/envvars"
	"kubesvc/internal/agent/images"
	"kubesvc/internal/runtime"
)

// configRetry is how soon a container that could not be configured (a missing ConfigMap or
// Secret) is tried again.
const configRetry = 2 * time.Second

// minKillGrace is the least time a container gets between SIGTERM and SIGKILL after its
// preStop hook (the kubelet's minimumGracePeriodInSeconds).
const minKillGrace = 2 * time.Second

// ctr is what the worker knows of one container of the pod.
type ctr struct {
	name string
	// attempts are the recorded runs, oldest first (at most the last two are kept).
	attempts []*runtime.Container
	// waitReason and waitMessage explain why the container does not run (start failures).
	waitReason, waitMessage string
	// retryAt delays the next start after a configuration or image error.
	retryAt time.Time
	// Crash-loop back-off (the kubelet's flowcontrol.Backoff entry).
	backoff        time.Duration
	backoffUpdated time.Time
	// Image "pull" back-off.
	pullBackoff time.Duration

	// Probe results, written by probe goroutines under the worker's mu.
	ready, started, livenessFailed bool
	probeCancel                    context.CancelFunc
}

func (c *ctr) latest() *runtime.Container {
	if len(c.attempts) == 0 {
		return nil
	}
	return c.attempts[len(c.attempts)-1]
}

func (c *ctr) previous() *runtime.Container {
	if len(c.attempts) < 2 {
		return nil
	}
	return c.attempts[len(c.attempts)-2]
}

// exitInfo is a container's termination as the status reports it.
type exitInfo struct {
	code              int32
	reason, message   string
	signal            int32
	started, finished time.Time
}

// exitOf returns the termination of a container that is not running, or nil while it runs or
// starts.
func exitOf(st runtime.State) *exitInfo {
	if st.Running {
		return nil
	}
	var e exitInfo
	if st.Started != nil {
		e.started = st.Started.StartedAt
	}
	switch {
	case st.Exit != nil && st.Exit.StartError != "":
		e.code, e.reason, e.message, e.finished = 128, "StartError", st.Exit.StartError, st.Exit.FinishedAt
	case st.Exit != nil:
		e.code, e.finished = int32(st.Exit.Code), st.Exit.FinishedAt
		e.reason = "Completed"
		if e.code != 0 {
			e.reason = "Error"
		}
	case st.Lost:
		e.code, e.reason, e.message = 137, "ContainerStatusUnknown", "The container could not be located when the pod was terminated"
		e.finished = time.Now()
	default:
		return nil
	}
	if e.started.IsZero() {
		e.started = e.finished
	}
	return &e
}

func restartPolicy(pod *corev1.Pod) corev1.RestartPolicy {
	if pod.Spec.RestartPolicy == "" {
		return corev1.RestartPolicyAlways
	}
	return pod.Spec.RestartPolicy
}

func shouldRestart(policy corev1.RestartPolicy, code int32) bool {
	return policy == corev1.RestartPolicyAlways || policy == corev1.RestartPolicyOnFailure && code != 0
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// initDone reports whether every init container completed (sidecars: started).
func (w *podWorker) initDone(pod *corev1.Pod) bool {
	for i := range pod.Spec.InitContainers {
		ic := &pod.Spec.InitContainers[i]
		c := w.ctrs[ic.Name]
		if c == nil || c.latest() == nil {
			return false
		}
		st := w.a.rt.State(c.latest())
		if isSidecar(ic) {
			if !st.Running && c.previous() == nil {
				return false
			}
			continue
		}
		if ex := exitOf(st); ex == nil || ex.code != 0 {
			return false
		}
	}
	return true
}

// syncContainers runs the init containers in order, then starts and restarts the app
// containers per restartPolicy with back-off, and kills containers whose liveness failed.
func (w *podWorker) syncContainers(pod *corev1.Pod) {
	policy := restartPolicy(pod)
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := w.ctr(spec.Name)
		latest := c.latest()
		if latest == nil {
			w.start(pod, spec, c, 0)
			return
		}
		st := w.a.rt.State(latest)
		if st.Running {
			w.adoptProbes(pod, spec, c, latest)
			w.checkLiveness(pod, spec, c, latest)
			if isSidecar(spec) {
				continue
			}
			return
		}
		ex := exitOf(st)
		if ex == nil {
			return
		}
		if isSidecar(spec) {
			w.restart(pod, spec, c, latest, ex)
			continue
		}
		if ex.code == 0 {
			continue
		}
		if policy != corev1.RestartPolicyNever {
			w.restart(pod, spec, c, latest, ex)
		}
		return
	}
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := w.ctr(spec.Name)
		latest := c.latest()
		if latest == nil {
			w.start(pod, spec, c, 0)
			continue
		}
		st := w.a.rt.State(latest)
		if st.Running {
			w.adoptProbes(pod, spec, c, latest)
			w.checkLiveness(pod, spec, c, latest)
			continue
		}
		if ex := exitOf(st); ex != nil && shouldRestart(policy, ex.code) {
			w.restart(pod, spec, c, latest, ex)
		}
	}
}

// checkLiveness kills a running container whose liveness or startup probe failed; it is then
// restarted like a crashed one.
func (w *podWorker) checkLiveness(pod *corev1.Pod, spec *corev1.Container, c *ctr, rc *runtime.Container) {
	w.mu.Lock()
	failed := c.livenessFailed
	c.livenessFailed = false
	w.mu.Unlock()
	if !failed {
		return
	}
	w.a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", spec.Name)
	w.stopContainerProbes(c)
	w.killContainer(pod, spec, rc, probeGrace(pod, spec))
	w.kick()
}

func probeGrace(pod *corev1.Pod, spec *corev1.Container) time.Duration {
	for _, p := range []*corev1.Probe{spec.LivenessProbe, spec.StartupProbe} {
		if p != nil && p.TerminationGracePeriodSeconds != nil {
			return time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		}
	}
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return time.Duration(g) * time.Second
}

// restart starts a new attempt of an exited container unless it is in back-off (the kubelet's
// doBackOff: no delay after the first exit, then 10 s doubling to 5 min, reset after a quiet
// 10 min).
func (w *podWorker) restart(pod *corev1.Pod, spec *corev1.Container, c *ctr, latest *runtime.Container, ex *exitInfo) {
	now := time.Now()
	expired := now.Sub(c.backoffUpdated) > 2*w.a.cfg.BackoffMax
	if c.backoff > 0 && !expired && now.Sub(ex.finished) < c.backoff {
		wait := c.backoff - now.Sub(ex.finished)
		if c.waitReason != "CrashLoopBackOff" {
			w.a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", spec.Name, formatPod(pod))
		}
		c.waitReason = "CrashLoopBackOff"
		c.waitMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", c.backoff, spec.Name, formatPod(pod))
		w.after(wait)
		return
	}
	if c.backoff == 0 || expired {
		c.backoff = w.a.cfg.BackoffInitial
	} else {
		c.backoff = min(2*c.backoff, w.a.cfg.BackoffMax)
	}
	c.backoffUpdated = now
	w.start(pod, spec, c, latest.Attempt+1)
}

// start starts attempt of a container: environment, command, image catalog, then the
// runtime; failures leave it waiting with the kubelet's reasons.
func (w *podWorker) start(pod *corev1.Pod, spec *corev1.Container, c *ctr, attempt int) {
	a := w.a
	now := time.Now()
	if now.Before(c.retryAt) {
		w.after(c.retryAt.Sub(now))
		return
	}
	services, _ := a.factory.Core().V1().Services().Lister().List(everything)
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	svcEnv := envvars.ServiceMap(services, pod.Namespace, links)
	env, err := envvars.Container(envvars.Pod{
		Pod: pod, PodIPs: w.podIPs(), HostIPs: []string{a.nodeIP.String()}, NodeAllocatable: a.capacity(),
	}, spec, svcEnv, sources{a})
	if err != nil {
		c.waitReason, c.waitMessage, c.retryAt = "CreateContainerConfigError", err.Error(), now.Add(configRetry)
		a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.after(configRetry)
		return
	}
	vars := map[string]string{}
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	mapping := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	expand := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = envvars.Expand(s, mapping)
		}
		return out
	}
	argv, img, ok := a.catalog.Command(spec.Image, expand(spec.Command), expand(spec.Args))
	if !ok {
		w.imageFailed(pod, spec, c)
		return
	}
	c.pullBackoff = 0
	a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", spec.Image)
	dir := spec.WorkingDir
	if dir == "" {
		dir = img.WorkingDir
	}
	cc := runtime.ContainerConfig{
		Name: spec.Name, Attempt: attempt, Image: images.Canonical(spec.Image), ImageID: images.Canonical(spec.Image),
		Args: argv, Env: processEnv(w.hostname(pod), img.Env, env), Dir: dir,
	}
	if sc := spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			u := uint32(*sc.RunAsUser)
			cc.UID = &u
		}
		if sc.RunAsGroup != nil {
			g := uint32(*sc.RunAsGroup)
			cc.GID = &g
		}
	}
	rc, err := a.rt.StartContainer(w.sandbox, cc)
	if err != nil {
		c.waitReason, c.waitMessage, c.retryAt = "RunContainerError", err.Error(), now.Add(configRetry)
		a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.after(configRetry)
		return
	}
	c.attempts = append(c.attempts, rc)
	c.waitReason, c.waitMessage = "", ""
	w.pruneAttempts(c)
	st := a.rt.State(rc)
	if st.Exit != nil && st.Exit.StartError != "" {
		a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Failed", "Error: failed to start container %q: %s", spec.Name, st.Exit.StartError)
		return
	}
	a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeNormal, "Created", "Created container: %s", spec.Name)
	a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeNormal, "Started", "Started container %s", spec.Name)
	if h := spec.Lifecycle; h != nil && h.PostStart != nil {
		if msg, err := w.runHandler(pod, rc, h.PostStart, probeGrace(pod, spec)); err != nil {
			a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %s", msg)
			w.killContainer(pod, spec, rc, probeGrace(pod, spec))
			return
		}
	}
	w.startProbes(pod, spec, c, rc)
}

// imageFailed records a container whose image is not in the catalog: ErrImagePull, then
// ImagePullBackOff while the back-off runs.
func (w *podWorker) imageFailed(pod *corev1.Pod, spec *corev1.Container, c *ctr) {
	msg := images.ErrNotInCatalog(spec.Image)
	if c.pullBackoff == 0 {
		c.waitReason, c.waitMessage = "ErrImagePull", msg
		c.pullBackoff = w.a.cfg.BackoffInitial
		w.a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", spec.Image, msg)
		w.a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
	} else {
		c.waitReason, c.waitMessage = "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", spec.Image, msg)
		c.pullBackoff = min(2*c.pullBackoff, w.a.cfg.BackoffMax)
	}
	c.retryAt = time.Now().Add(c.pullBackoff)
	w.after(c.pullBackoff)
}

// pruneAttempts keeps the current and the previous attempt (for logs --previous).
func (w *podWorker) pruneAttempts(c *ctr) {
	for len(c.attempts) > 2 {
		if err := w.a.rt.RemoveContainer(string(w.uid), c.attempts[0]); err != nil {
			klog.ErrorS(err, "agent: remove old container attempt", "pod", w.key(), "container", c.name)
		}
		c.attempts = c.attempts[1:]
	}
}

// hostname is the HOSTNAME variable: the pod's kernel hostname, the node's for host network.
func (w *podWorker) hostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		h, _ := os.Hostname()
		return h
	}
	h, _ := dnsconfig.KernelHostname(pod, w.a.dns.ClusterDomain)
	return h
}

// processEnv is the process environment as a container runtime builds it: PATH and HOSTNAME,
// the image's variables, the kubelet's (overriding), HOME last when unset.
func processEnv(hostname string, imageEnv []string, env []corev1.EnvVar) []string {
	out := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname}
	idx := map[string]int{"PATH": 0, "HOSTNAME": 1}
	set := func(name, value string) {
		if i, ok := idx[name]; ok {
			out[i] = name + "=" + value
			return
		}
		idx[name] = len(out)
		out = append(out, name+"="+value)
	}
	for _, kv := range imageEnv {
		n, v, _ := strings.Cut(kv, "=")
		set(n, v)
	}
	for _, e := range env {
		set(e.Name, e.Value)
	}
	if _, ok := idx["HOME"]; !ok {
		out = append(out, "HOME=/root")
	}
	return out
}

// killContainer stops one container: its preStop hook, SIGTERM, then SIGKILL when grace
// (counted from the start, at least minKillGrace after the hook) has passed.
func (w *podWorker) killContainer(pod *corev1.Pod, spec *corev1.Container, rc *runtime.Container, grace time.Duration) {
	a := w.a
	if !a.rt.State(rc).Running {
		return
	}
	deadline := time.Now().Add(grace)
	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
		if msg, err := w.runHandler(pod, rc, spec.Lifecycle.PreStop, grace); err != nil {
			a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %s", msg)
		}
	}
	if d := time.Now().Add(minKillGrace); grace > 0 && deadline.Before(d) {
		deadline = d
	}
	if grace > 0 {
		if err := a.rt.Signal(rc, syscall.SIGTERM); err != nil {
			klog.ErrorS(err, "agent: SIGTERM", "pod", w.key(), "container", rc.Name)
		}
		if waitFor(context.Background(), time.Until(deadline), func() bool { return !a.rt.State(rc).Running }) {
			return
		}
	}
	_ = a.rt.Signal(rc, syscall.SIGKILL)
	waitFor(context.Background(), 10*time.Second, func() bool { return !a.rt.State(rc).Running })
}

// killAll stops every running container of the pod in parallel with grace; event, if not
// empty, is the Killing event's format (with the container name).
func (w *podWorker) killAll(pod *corev1.Pod, grace time.Duration, event string) {
	specs := map[string]*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		specs[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
	}
	for i := range pod.Spec.Containers {
		specs[pod.Spec.Containers[i].Name] = &pod.Spec.Containers[i]
	}
	var wg sync.WaitGroup
	for name, c := range w.ctrs {
		rc := c.latest()
		if rc == nil || !w.a.rt.State(rc).Running {
			continue
		}
		if event != "" {
			w.a.recorder.Eventf(containerRef(pod, name), corev1.EventTypeNormal, "Killing", event, name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.killContainer(pod, specs[name], rc, grace)
		}()
	}
	wg.Wait()
}

// containerRef is the event reference of a container (fieldPath spec.containers{name}).
func containerRef(pod *corev1.Pod, name string) *corev1.ObjectReference {
	path := fmt.Sprintf("spec.containers{%s}", name)
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			path = fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: path,
	}
}

// sources reads ConfigMaps and Secrets from the API for env.
type sources struct{ a *Agent }

func (s sources) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	ctx, cancel := context.WithTimeout(s.a.ctx, 10*time.Second)
	defer cancel()
	return s.a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (s sources) Secret(ns, name string) (*corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(s.a.ctx, 10*time.Second)
	defer cancel()
	return s.a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}
