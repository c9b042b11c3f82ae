package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kubesvc/internal/runtime"
)

// probeKind names a probe as the kubelet's events do.
type probeKind string

const (
	readiness probeKind = "Readiness"
	liveness  probeKind = "Liveness"
	startup   probeKind = "Startup"
)

// startProbes starts the probe loops of a container attempt. Until the startup probe succeeds
// (immediately without one) the container is not started and the other probes wait; readiness
// starts false, liveness failing failureThreshold times in a row kills the container.
func (w *podWorker) startProbes(pod *corev1.Pod, spec *corev1.Container, c *ctr, rc *runtime.Container) {
	w.startProbesWith(pod, spec, c, rc, spec.ReadinessProbe == nil, spec.StartupProbe == nil)
}

// startProbesWith starts the probe loops with initial readiness and startup results.
func (w *podWorker) startProbesWith(pod *corev1.Pod, spec *corev1.Container, c *ctr, rc *runtime.Container, ready, started bool) {
	w.stopContainerProbes(c)
	ctx, cancel := context.WithCancel(w.ctx)
	c.probeCancel = cancel
	w.mu.Lock()
	c.ready, c.started, c.livenessFailed = ready, started, false
	w.mu.Unlock()
	startedCh := make(chan struct{})
	if started {
		close(startedCh)
	} else {
		go w.probeLoop(ctx, pod, spec, c, rc, startup, spec.StartupProbe, nil, false, func(ok bool) bool {
			if !ok {
				w.setLivenessFailed(c)
				return true
			}
			w.mu.Lock()
			c.started = true
			c.ready = c.ready || spec.ReadinessProbe == nil
			w.mu.Unlock()
			close(startedCh)
			w.kick()
			return true // a startup probe stops after its result
		})
	}
	if p := spec.ReadinessProbe; p != nil {
		go w.probeLoop(ctx, pod, spec, c, rc, readiness, p, startedCh, ready, func(ok bool) bool {
			w.mu.Lock()
			changed := c.ready != ok
			c.ready = ok
			w.mu.Unlock()
			if changed {
				w.kick()
			}
			return false
		})
	}
	if p := spec.LivenessProbe; p != nil {
		go w.probeLoop(ctx, pod, spec, c, rc, liveness, p, startedCh, true, func(ok bool) bool {
			if !ok {
				w.setLivenessFailed(c)
				return true
			}
			return false
		})
	}
}

// adoptProbes starts the probes of a container this agent found running (after a restart). It
// keeps the readiness the API last showed for that container, so an agent restart does not
// flap the pod's Ready condition; the startup probe counts as passed.
func (w *podWorker) adoptProbes(pod *corev1.Pod, spec *corev1.Container, c *ctr, rc *runtime.Container) {
	if c.probeCancel != nil {
		return
	}
	ready := spec.ReadinessProbe == nil
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.ContainerStatuses...), pod.Status.InitContainerStatuses...) {
		if cs.Name == spec.Name && cs.ContainerID == "kubesvc://"+rc.ID {
			ready = ready || cs.Ready
		}
	}
	w.startProbesWith(pod, spec, c, rc, ready, true)
}

func (w *podWorker) setLivenessFailed(c *ctr) {
	w.mu.Lock()
	c.livenessFailed = true
	w.mu.Unlock()
	w.kick()
}

func (w *podWorker) stopContainerProbes(c *ctr) {
	if c.probeCancel != nil {
		c.probeCancel()
		c.probeCancel = nil
	}
}

func (w *podWorker) stopProbes() {
	for _, c := range w.ctrs {
		w.stopContainerProbes(c)
	}
}

// probeLoop runs probe p every period after its initial delay (counted from the container's
// start) and once started fires; result is called when the result flips after the success or
// failure threshold, and stops the loop by returning true.
func (w *podWorker) probeLoop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *ctr, rc *runtime.Container, kind probeKind, p *corev1.Probe, started <-chan struct{}, initial bool, result func(ok bool) bool) {
	if started != nil {
		select {
		case <-ctx.Done():
			return
		case <-started:
		}
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	successThreshold, failureThreshold := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	if st := w.a.rt.State(rc).Started; st != nil {
		if d := time.Until(st.StartedAt.Add(time.Duration(p.InitialDelaySeconds) * time.Second)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	var successes, failures int32
	last := initial // liveness starts as success, startup as failure, readiness as given
	for {
		ok, msg := w.probe(ctx, pod, spec, rc, p, timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
			w.a.recorder.Eventf(containerRef(pod, spec.Name), corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
		}
		switch {
		case ok && successes >= successThreshold && (!last || kind == startup):
			last = true
			if result(true) {
				return
			}
		case !ok && failures >= failureThreshold && (last || kind != readiness):
			last = false
			if result(false) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe runs one probe; the message explains a failure as the kubelet words it.
func (w *podWorker) probe(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, rc *runtime.Container, p *corev1.Probe, timeout time.Duration) (bool, string) {
	h := p.ProbeHandler
	switch {
	case h.Exec != nil:
		out, code, err := w.execIn(ctx, rc, h.Exec.Command, timeout)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", strings.Join(h.Exec.Command, " "), code, strings.TrimSpace(out))
		}
		return true, ""
	case h.HTTPGet != nil:
		return w.httpProbe(ctx, pod, spec, h.HTTPGet, timeout)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, spec)
		if err != nil {
			return false, err.Error()
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = w.podIP().String()
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return false, fmt.Sprintf("dial tcp %s: %v", net.JoinHostPort(host, strconv.Itoa(port)), unwrapNetErr(err))
		}
		conn.Close()
		return true, ""
	case h.GRPC != nil:
		return false, "gRPC probes are not supported by kubesvc"
	}
	return true, ""
}

func unwrapNetErr(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}

// httpProbe GETs the probe URL from the node; 200-399 is success.
func (w *podWorker) httpProbe(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, g *corev1.HTTPGetAction, timeout time.Duration) (bool, string) {
	port, err := resolvePort(g.Port, spec)
	if err != nil {
		return false, err.Error()
	}
	host := g.Host
	if host == "" {
		host = w.podIP().String()
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	pu, err := url.Parse(path)
	if err == nil {
		u.Path, u.RawQuery = pu.Path, pu.RawQuery
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	req.Header.Set("Accept", "*/*")
	for _, hdr := range g.HTTPHeaders {
		if strings.EqualFold(hdr.Name, "Host") {
			req.Host = hdr.Value
			continue
		}
		req.Header.Add(hdr.Name, hdr.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe targets
	}}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Sprintf("Get %q: %v", u.String(), unwrapURLErr(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

func unwrapURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return unwrapNetErr(ue.Err)
	}
	return err
}

// resolvePort resolves a numeric or named container port.
func resolvePort(p intstr.IntOrString, spec *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p.StrVal, spec.Name)
}

// execIn runs cmd in the container with a timeout and returns its combined output and exit
// code.
func (w *podWorker) execIn(ctx context.Context, rc *runtime.Container, cmd []string, timeout time.Duration) (string, int, error) {
	if w.sandbox == nil {
		return "", 0, errNoSandbox
	}
	e, err := w.a.rt.ExecCommand(w.sandbox, rc, cmd, false)
	if err != nil {
		return "", 0, err
	}
	var out bytes.Buffer
	e.Cmd.Stdout, e.Cmd.Stderr = &limited{w: &out, n: 10 << 10}, &limited{w: &out, n: 10 << 10}
	if err := e.Start(); err != nil {
		return "", 0, err
	}
	done := make(chan error, 1)
	go func() { done <- e.Cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		_ = killGroup(e.Cmd.Process.Pid)
		<-done
		return out.String(), 0, fmt.Errorf("command %q timed out", strings.Join(cmd, " "))
	case <-ctx.Done():
		_ = killGroup(e.Cmd.Process.Pid)
		<-done
		return out.String(), 0, ctx.Err()
	}
	return out.String(), e.Cmd.ProcessState.ExitCode(), nil
}

// runHandler runs a lifecycle hook (exec, httpGet or sleep) within timeout.
func (w *podWorker) runHandler(pod *corev1.Pod, rc *runtime.Container, h *corev1.LifecycleHandler, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(w.a.ctx, timeout)
	defer cancel()
	spec := findContainer(pod, rc.Name)
	switch {
	case h.Exec != nil:
		out, code, err := w.execIn(ctx, rc, h.Exec.Command, timeout)
		if err != nil {
			return err.Error(), err
		}
		if code != 0 {
			msg := fmt.Sprintf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
			return msg, fmt.Errorf("%s", msg)
		}
	case h.HTTPGet != nil:
		if ok, msg := w.httpProbe(ctx, pod, spec, h.HTTPGet, timeout); !ok {
			return msg, fmt.Errorf("%s", msg)
		}
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
	}
	return "", nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return &corev1.Container{Name: name}
}

// limited writes at most n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, err := l.w.Write(q)
	return len(p), err
}

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
