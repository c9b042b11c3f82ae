package proxytest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/runtime/netns"
)

// From is where a connection starts.
type From struct {
	kind fromKind
	node int    // fromNode
	pod  string // fromPod
}

type fromKind int

const (
	fromPod fromKind = iota
	fromNode
	fromClient
)

// PodOn is the traffic-source pod of node n (c1 on node1, c2 on node2): selected by no Service.
func PodOn(n int) From { return From{kind: fromPod, pod: "c" + strconv.Itoa(n)} }

// Pod is the pod called name (e.g. an endpoint reaching itself through its Service).
func Pod(name string) From { return From{kind: fromPod, pod: name} }

// Node is node n's own network namespace (the host, not a pod).
func Node(n int) From { return From{kind: fromNode, node: n} }

// Client is the client host on the LAN (198.51.100.2), outside the cluster.
var Client = From{kind: fromClient}

func (f From) String() string {
	switch f.kind {
	case fromPod:
		return "pod " + f.pod
	case fromNode:
		return "node" + strconv.Itoa(f.node)
	}
	return "client host"
}

// To is a destination: a Service address and port.
type To struct {
	kind    toKind
	svc     string
	port    string // the Service port's name ("http", "udp")
	node    int    // NodePort and health-check destinations
	ip      netip.Addr
	portNum int32 // an explicit port (undefined-port cases)
}

type toKind int

const (
	toClusterIP toKind = iota
	toNodePort
	toLoopbackNodePort
	toExternalIP
	toLBIP
	toHealthCheck
	toPodIP
	toProxyHealthz
	toProxyMetrics
)

// ClusterIP is the Service's ClusterIP at its port called port.
func ClusterIP(svc, port string) To { return To{kind: toClusterIP, svc: svc, port: port} }

// ClusterIPPort is the Service's ClusterIP at a port number the Service does not define.
func ClusterIPPort(svc string, port int32) To {
	return To{kind: toClusterIP, svc: svc, port: "http", portNum: port}
}

// NodePort is node n's LAN address at the NodePort of the Service's port called port.
func NodePort(svc, port string, n int) To { return To{kind: toNodePort, svc: svc, port: port, node: n} }

// LoopbackNodePort is 127.0.0.1 at the Service port's NodePort (from a node).
func LoopbackNodePort(svc, port string) To { return To{kind: toLoopbackNodePort, svc: svc, port: port} }

// ExternalIP is the Service's first externalIP at its port called port.
func ExternalIP(svc, port string) To { return To{kind: toExternalIP, svc: svc, port: port} }

// LBIP is the LoadBalancer ingress IP ip of the Service at its port called port.
func LBIP(svc, port string, ip netip.Addr) To { return To{kind: toLBIP, svc: svc, port: port, ip: ip} }

// PodIP is the pod's own IP at its netexec port called port ("http" or "udp"): no Service, a
// control that the world itself works.
func PodIP(pod, port string) To { return To{kind: toPodIP, svc: pod, port: port} }

// HealthCheck is node n's LAN address at the Service's healthCheckNodePort (spec PX-H-01).
func HealthCheck(svc string, n int) To { return To{kind: toHealthCheck, svc: svc, node: n} }

func (t To) String() string {
	switch t.kind {
	case toClusterIP:
		if t.portNum != 0 {
			return fmt.Sprintf("ClusterIP of %s:%d", t.svc, t.portNum)
		}
		return "ClusterIP of " + t.svc + ":" + t.port
	case toNodePort:
		return fmt.Sprintf("NodePort %s:%s on node%d", t.svc, t.port, t.node)
	case toLoopbackNodePort:
		return "127.0.0.1 NodePort " + t.svc + ":" + t.port
	case toExternalIP:
		return "externalIP of " + t.svc + ":" + t.port
	case toLBIP:
		return "LB IP " + t.ip.String() + " of " + t.svc + ":" + t.port
	case toPodIP:
		return "pod IP of " + t.svc + ":" + t.port
	case toProxyHealthz:
		return fmt.Sprintf("proxy %s of node%d", t.svc, t.node)
	case toProxyMetrics:
		return fmt.Sprintf("proxy metrics of node%d", t.node)
	}
	return fmt.Sprintf("healthCheckNodePort of %s on node%d", t.svc, t.node)
}

// source resolves f to a network namespace path and the address its traffic leaves with.
func (e *Env) source(f From) (ns string, self netip.Addr, err error) {
	switch f.kind {
	case fromPod:
		p, ok := e.Pods[f.pod]
		if !ok {
			return "", netip.Addr{}, fmt.Errorf("no pod %s", f.pod)
		}
		ns, err := e.World.PodNetNS(p)
		return ns, e.podIP(f.pod), err
	case fromNode:
		n := e.Nodes[f.node-1]
		return n.NetNS, n.IP, nil
	}
	h := e.World.ClientHost()
	return h.NetNS, h.IP, nil
}

// destination resolves t to "ip:port" and the protocol.
func (e *Env) destination(t To) (string, corev1.Protocol, error) {
	if t.kind == toPodIP {
		p, ok := e.Pods[t.svc]
		if !ok {
			return "", "", fmt.Errorf("no pod %s", t.svc)
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == t.port {
					return netip.AddrPortFrom(e.podIP(t.svc), uint16(cp.ContainerPort)).String(), cp.Protocol, nil
				}
			}
		}
		return "", "", fmt.Errorf("pod %s has no port %q", t.svc, t.port)
	}
	e.mu.Lock()
	s, ok := e.Services[t.svc]
	e.mu.Unlock()
	if !ok {
		return "", "", fmt.Errorf("no service %s", t.svc)
	}
	if t.kind == toHealthCheck {
		if s.Spec.HealthCheckNodePort == 0 {
			return "", "", fmt.Errorf("service %s has no healthCheckNodePort", t.svc)
		}
		return netip.AddrPortFrom(e.Nodes[t.node-1].IP, uint16(s.Spec.HealthCheckNodePort)).String(), corev1.ProtocolTCP, nil
	}
	var sp *corev1.ServicePort
	for i := range s.Spec.Ports {
		if s.Spec.Ports[i].Name == t.port {
			sp = &s.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", "", fmt.Errorf("service %s has no port %q", t.svc, t.port)
	}
	port := sp.Port
	if t.portNum != 0 {
		port = t.portNum
	}
	var ip netip.Addr
	switch t.kind {
	case toClusterIP:
		a, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil {
			return "", "", fmt.Errorf("service %s ClusterIP %q: %w", t.svc, s.Spec.ClusterIP, err)
		}
		ip = a
	case toNodePort, toLoopbackNodePort:
		if sp.NodePort == 0 {
			return "", "", fmt.Errorf("service %s port %s has no NodePort", t.svc, t.port)
		}
		port = sp.NodePort
		ip = netip.MustParseAddr("127.0.0.1")
		if t.kind == toNodePort {
			ip = e.Nodes[t.node-1].IP
		}
	case toExternalIP:
		if len(s.Spec.ExternalIPs) == 0 {
			return "", "", fmt.Errorf("service %s has no externalIPs", t.svc)
		}
		ip = netip.MustParseAddr(s.Spec.ExternalIPs[0])
	case toLBIP:
		ip = t.ip
	}
	return netip.AddrPortFrom(ip, uint16(port)).String(), sp.Protocol, nil
}

// failure classifies why a probe reached no endpoint.
type failure int

const (
	ok failure = iota
	refused
	timedOut
	otherFailure // reset, EOF, unreachable, a bad answer...
)

func (f failure) String() string {
	return [...]string{"answered", "refused", "timed out", "failed"}[f]
}

// answer is one probe's outcome: which pod answered and which source address it saw.
type answer struct {
	pod     string
	src     netip.Addr
	fail    failure
	err     error
	elapsed time.Duration
}

func (a answer) String() string {
	if a.fail != ok {
		return fmt.Sprintf("%s after %v (%v)", a.fail, a.elapsed.Round(time.Millisecond), a.err)
	}
	return a.pod + " (source " + a.src.String() + ")"
}

func classify(err error) failure {
	var ne net.Error
	switch {
	case err == nil:
		return ok
	case errors.Is(err, syscall.ECONNREFUSED):
		return refused
	case errors.Is(err, syscall.EPERM):
		// A node's own datagram rejected by its netfilter output hook: the send fails with
		// EPERM (the ICMP error follows on the socket).
		return refused
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return timedOut
	}
	return otherFailure
}

// parseWhoami parses netexec's "<hostname> <ip:port>".
func parseWhoami(body string) (string, netip.Addr, error) {
	host, addr, found := strings.Cut(strings.TrimSpace(body), " ")
	if !found {
		return "", netip.Addr{}, fmt.Errorf("whoami answer %q", body)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("whoami answer %q: %w", body, err)
	}
	return host, ap.Addr().Unmap(), nil
}

// probeTCP opens one connection from ns to addr and asks netexec /whoami; wait bounds the
// whole exchange.
func probeTCP(ns, addr string, wait time.Duration) answer {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	fail := func(err error) answer { return answer{fail: classify(err), err: err, elapsed: time.Since(start)} }
	c, err := netns.Dial(ctx, ns, "tcp", addr)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(wait))
	return exchangeHTTP(c, start)
}

// exchangeHTTP asks /whoami on the open connection c (HTTP/1.1, kept open).
func exchangeHTTP(c net.Conn, start time.Time) answer {
	fail := func(err error) answer { return answer{fail: classify(err), err: err, elapsed: time.Since(start)} }
	if _, err := io.WriteString(c, "GET /whoami HTTP/1.1\r\nHost: proxytest\r\n\r\n"); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return answer{fail: otherFailure, err: fmt.Errorf("HTTP %s: %q", resp.Status, body), elapsed: time.Since(start)}
	}
	pod, src, err := parseWhoami(string(body))
	if err != nil {
		return answer{fail: otherFailure, err: err, elapsed: time.Since(start)}
	}
	return answer{pod: pod, src: src, elapsed: time.Since(start)}
}

// udpFlow is one UDP flow (one socket, so one source port and one conntrack entry).
type udpFlow struct {
	c    net.Conn
	addr string
}

func openUDP(ns, addr string) (*udpFlow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netns.Dial(ctx, ns, "udp", addr)
	if err != nil {
		return nil, err
	}
	return &udpFlow{c: c, addr: addr}, nil
}

func (f *udpFlow) Close() error { return f.c.Close() }

// ask sends "whoami" every resend until an answer arrives or wait passes.
func (f *udpFlow) ask(wait, resend time.Duration) answer {
	start := time.Now()
	buf := make([]byte, 2048)
	for {
		if _, err := f.c.Write([]byte("whoami")); err != nil {
			return answer{fail: classify(err), err: err, elapsed: time.Since(start)}
		}
		next := time.Now().Add(resend)
		if end := start.Add(wait); next.After(end) {
			next = end
		}
		_ = f.c.SetReadDeadline(next)
		n, err := f.c.Read(buf)
		if err == nil {
			pod, src, err := parseWhoami(string(buf[:n]))
			if err != nil {
				return answer{fail: otherFailure, err: err, elapsed: time.Since(start)}
			}
			return answer{pod: pod, src: src, elapsed: time.Since(start)}
		}
		if fl := classify(err); fl != timedOut || time.Since(start) >= wait {
			return answer{fail: fl, err: err, elapsed: time.Since(start)}
		}
	}
}

// probeUDP sends "whoami" on a new flow from ns to addr.
func probeUDP(ns, addr string, wait time.Duration) answer {
	start := time.Now()
	f, err := openUDP(ns, addr)
	if err != nil {
		return answer{fail: classify(err), err: err, elapsed: time.Since(start)}
	}
	defer f.Close()
	return f.ask(wait, 500*time.Millisecond)
}

// probe makes one connection (TCP) or flow (UDP) from f to t.
func (e *Env) probe(f From, t To, wait time.Duration) (answer, error) {
	ns, _, err := e.source(f)
	if err != nil {
		return answer{}, err
	}
	addr, proto, err := e.destination(t)
	if err != nil {
		return answer{}, err
	}
	if proto == corev1.ProtocolUDP {
		return probeUDP(ns, addr, wait), nil
	}
	return probeTCP(ns, addr, wait), nil
}
