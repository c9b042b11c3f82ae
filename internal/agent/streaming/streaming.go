// Package streaming is the agent's kubelet port: pods/log, exec and portforward for the pods of
// its node, over TLS, for the API server only (its kube-apiserver-kubelet-client certificate).
// exec and portforward use k8s.io/cri-streaming (SPDY; kubectl falls back to it from its
// websocket protocols); exec sessions run through `kubesvc agent nsexec` (internal/runtime).
//
// Imported by internal/agent.
package streaming

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"

	"kubesvc/internal/agent/join"
	"kubesvc/internal/runtime"
	"kubesvc/internal/runtime/logs"
	"kubesvc/internal/runtime/netns"
)

// Stream timeouts (the kubelet's defaults).
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// Config configures a Server.
type Config struct {
	// CAPEM is the cluster CA; client certificates must chain to it.
	CAPEM []byte
	// NodeName names the serving certificate and errors.
	NodeName string
	// IP and Port are where to listen (Port 0 picks one).
	IP   string
	Port int
	// Runtime returns the pod runtime, nil until it exists (requests then fail with 503).
	Runtime func() *runtime.Runtime
	// Pod returns a pod of this node by namespace and name.
	Pod func(namespace, name string) (*corev1.Pod, error)
}

// Server serves the kubelet port. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	srv  *http.Server
	l    net.Listener
	errc chan error
}

// Port returns the port the server listens on.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Err reports a fatal serving error.
func (s *Server) Err() <-chan error { return s.errc }

// Close stops serving; open exec and port-forward streams end.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.srv.Close()
}

// Start listens and serves until Close.
func Start(cfg Config) (*Server, error) {
	cert, err := selfSignedCert(cfg.NodeName, cfg.IP)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.CAPEM) {
		return nil, errors.New("streaming: no cluster CA")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen on --node-ip/--kubelet-port: %w", err)
	}
	a := &Server{cfg: cfg, l: l, errc: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/namespaces/{ns}/pods/{name}/{sub}", a.serveSubresource)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
			MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		},
	}
	a.srv = srv
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- fmt.Errorf("kubelet port: %w", err)
		}
	}()
	return a, nil
}

// selfSignedCert is the agent's serving certificate (not verified by the API server, like
// a kubelet's default self-signed one).
func selfSignedCert(node, ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: node + "@kubesvc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{node}, IPAddresses: []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func (a *Server) serveSubresource(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || r.TLS.VerifiedChains[0][0].Subject.CommonName != join.KubeletClientUser {
		http.Error(w, "forbidden: only the API server may use the kubelet port", http.StatusForbidden)
		return
	}
	ns, name, sub := r.PathValue("ns"), r.PathValue("name"), r.PathValue("sub")
	rt := a.cfg.Runtime()
	if rt == nil {
		httpStatus(w, http.StatusServiceUnavailable, "node "+a.cfg.NodeName+" is starting")
		return
	}
	pod, err := a.cfg.Pod(ns, name)
	if err != nil {
		httpStatus(w, http.StatusNotFound, fmt.Sprintf("pod %q not found on node %s", name, a.cfg.NodeName))
		return
	}
	switch sub {
	case "log":
		serveLog(w, r, rt, pod)
	case "exec":
		serveExec(w, r, rt, pod)
	case "portforward":
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			httpStatus(w, http.StatusBadRequest, err.Error())
			return
		}
		portforward.ServePortForward(w, r, forwarder{rt}, pod.Name, string(pod.UID), opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	case "attach":
		serveAttach(w, r, pod)
	default:
		httpStatus(w, http.StatusNotFound, "unknown subresource "+sub)
	}
}

// httpStatus writes a plain-text error the API server passes on.
func httpStatus(w http.ResponseWriter, code int, msg string) {
	http.Error(w, msg, code)
}

// containerName returns the container of a request, or the only one.
func containerName(pod *corev1.Pod, q string) (string, error) {
	if q != "" {
		if !hasContainer(pod, q) {
			return "", fmt.Errorf("container %s is not valid for pod %s", q, pod.Name)
		}
		return q, nil
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return "", fmt.Errorf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}

// attempts returns the current and previous attempt of a container, from the runtime's
// records (safe to use beside the pod's worker).
func attempts(rt *runtime.Runtime, pod *corev1.Pod, name string) (cur, prev *runtime.Container) {
	cs, _ := rt.Containers(string(pod.UID))
	list := cs[name]
	if len(list) > 0 {
		cur = list[len(list)-1]
	}
	if len(list) > 1 {
		prev = list[len(list)-2]
	}
	return cur, prev
}

// serveLog is pods/log: follow, previous, tailLines, sinceSeconds, sinceTime, timestamps,
// limitBytes.
func serveLog(w http.ResponseWriter, r *http.Request, rt *runtime.Runtime, pod *corev1.Pod) {
	q := r.URL.Query()
	name, err := containerName(pod, q.Get("container"))
	if err != nil {
		httpStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	cur, prev := attempts(rt, pod, name)
	c := cur
	if q.Get("previous") == "true" {
		if prev == nil {
			httpStatus(w, http.StatusBadRequest, fmt.Sprintf("previous terminated container %q in pod %q not found", name, pod.Name))
			return
		}
		c = prev
	}
	if c == nil {
		httpStatus(w, http.StatusBadRequest, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", name, pod.Name))
		return
	}
	opts := logs.Options{TailLines: -1, Timestamps: q.Get("timestamps") == "true", Follow: q.Get("follow") == "true" && c == cur}
	if v := q.Get("tailLines"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			opts.TailLines = n
		}
	}
	if v := q.Get("limitBytes"); v != "" {
		opts.LimitBytes, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := q.Get("sinceSeconds"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			opts.Since = time.Now().Add(-time.Duration(n) * time.Second)
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			opts.Since = t
		}
	}
	opts.Done = func() bool { return !rt.State(c).Running }
	w.Header().Set("Content-Type", "text/plain")
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	if err := logs.Read(r.Context(), c.LogPath(), opts, fw); err != nil {
		klog.V(2).InfoS("agent: pods/log", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (f *flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }

func (f *flushWriter) Flush() {
	if f.f != nil {
		f.f.Flush()
	}
}

func boolParam(q string) bool { return q == "true" || q == "1" }

func serveExec(w http.ResponseWriter, r *http.Request, rt *runtime.Runtime, pod *corev1.Pod) {
	q := r.URL.Query()
	name, err := containerName(pod, q.Get("container"))
	if err != nil {
		httpStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	opts := &remotecommand.Options{Stdin: boolParam(q.Get("stdin")), Stdout: boolParam(q.Get("stdout")), Stderr: boolParam(q.Get("stderr")), TTY: boolParam(q.Get("tty"))}
	remotecommand.ServeExec(w, r, executor{rt}, pod.Name, string(pod.UID), name, q["command"], opts, streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func serveAttach(w http.ResponseWriter, _ *http.Request, pod *corev1.Pod) {
	httpStatus(w, http.StatusNotImplemented, fmt.Sprintf("kubesvc: attach is not supported (pod %s); use kubectl logs -f or kubectl exec", pod.Name))
}

// executor runs kubectl exec sessions through `kubesvc agent nsexec`.
type executor struct{ rt *runtime.Runtime }

// exitError carries a non-zero exit code (k8s.io/utils/exec.ExitError).
type exitError struct{ code int }

func (e exitError) Error() string   { return fmt.Sprintf("command terminated with exit code %d", e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }

func (x executor) ExecInContainer(ctx context.Context, _ string, uid string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	rt := x.rt
	sb := rt.Sandbox(uid)
	if sb == nil {
		return errNoSandbox
	}
	cs, _ := rt.Containers(uid)
	list := cs[container]
	if len(list) == 0 || !rt.State(list[len(list)-1]).Running {
		return fmt.Errorf("container %s is not running", container)
	}
	e, err := rt.ExecCommand(sb, list[len(list)-1], cmd, tty)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var stdin io.WriteCloser
	if tty {
		master, slave, err := openPTY()
		if err != nil {
			e.Close()
			return err
		}
		defer master.Close()
		e.Cmd.Stdin, e.Cmd.Stdout, e.Cmd.Stderr = slave, slave, slave
		if err := e.Start(); err != nil {
			slave.Close()
			return err
		}
		slave.Close()
		go func() {
			for size := range resize {
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
			}
		}()
		if in != nil {
			go func() { _, _ = io.Copy(master, in) }()
		}
		if out != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(out, master) // ends with EIO when the session's last process exits
			}()
		}
	} else {
		if out != nil {
			e.Cmd.Stdout = out
		}
		if errw != nil {
			e.Cmd.Stderr = errw
		}
		if in != nil {
			stdin, err = e.Cmd.StdinPipe()
			if err != nil {
				e.Close()
				return err
			}
		}
		if err := e.Start(); err != nil {
			return err
		}
		if in != nil {
			// Copied by hand: Wait must not wait for the client's stdin to end.
			go func() {
				_, _ = io.Copy(stdin, in)
				stdin.Close()
			}()
		}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = killGroup(e.Cmd.Process.Pid)
		case <-done:
		}
	}()
	werr := e.Cmd.Wait()
	close(done)
	wg.Wait()
	if werr != nil {
		var ee interface{ ExitCode() int }
		if errors.As(werr, &ee) && ee.ExitCode() >= 0 {
			return exitError{code: ee.ExitCode()}
		}
		if e.Cmd.ProcessState != nil {
			if ws, ok := e.Cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return exitError{code: 128 + int(ws.Signal())}
			}
		}
		return werr
	}
	return nil
}

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

// errNoSandbox is reported for a pod without a sandbox.
var errNoSandbox = errors.New("pod has no sandbox")

// openPTY opens a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	return m, s, nil
}

// forwarder connects port-forward streams to the pod's localhost.
type forwarder struct{ rt *runtime.Runtime }

func (f forwarder) PortForward(ctx context.Context, _ string, uid string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb := f.rt.Sandbox(uid)
	if sb == nil {
		return errNoSandbox
	}
	conn, err := netns.Dial(ctx, sb.NetNS(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside namespace of pod %s: %w", port, sb.Name, err)
	}
	defer conn.Close()
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		errc <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		errc <- err
	}()
	select {
	case <-ctx.Done():
	case <-errc:
		<-errc
	}
	return nil
}
