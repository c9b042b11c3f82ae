package server

// Nodes: the server's side of node agents. Agents join with the token (internal/agent/join)
// and get a node identity; nodeAuthorize limits that identity the way Kubernetes' Node
// authorizer and NodeRestriction admission do; connectHandler proxies pods/log, exec, attach
// and portforward to the pod's agent.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"kubesvc/internal/agent"
	"kubesvc/internal/agent/join"
	"kubesvc/internal/apiserver"
	"kubesvc/internal/pki"
	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

var (
	podsInfo  = resource.Lookup(corev1.SchemeGroupVersion.WithResource("pods"))
	nodesInfo = resource.Lookup(corev1.SchemeGroupVersion.WithResource("nodes"))
)

// nodeAccess holds what the node pieces of the server need.
type nodeAccess struct {
	store *storage.Store
	pki   *pki.Bundle
	// kubelet is the transport to agents: the kubelet-client certificate; agents' serving
	// certificates are self-signed and not verified (kube-apiserver's default without
	// --kubelet-certificate-authority).
	kubelet *http.Transport
	// agent is this host's node agent (nil with --disable-agent).
	agent *agent.Agent
	// cidrs assigns node podCIDRs.
	cidrs *nodeCIDRs
}

func newNodeAccess(cfg *Config, store *storage.Store, b *pki.Bundle) (*nodeAccess, error) {
	cidrs, err := newNodeCIDRs(store.Client(), cfg.EtcdPrefix, cfg.ClusterCIDR)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := b.IssueClientCert(join.KubeletClientUser, []string{pki.MastersGroup}, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &nodeAccess{store: store, pki: b, cidrs: cidrs, kubelet: &http.Transport{
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
	}}, nil
}

// joinHandler serves the join endpoints.
func (n *nodeAccess) joinHandler(cfg *Config) http.Handler {
	return join.Handler(join.HandlerConfig{
		CAPEM: n.pki.CAPEM,
		Token: func() string { return n.pki.Token },
		Authenticate: func(r *http.Request) bool {
			u, ok := n.pki.Authenticate(r)
			return ok && u.Name == pki.JoinTokenUser
		},
		Issue: n.pki.IssueClientCert,
		Cluster: join.Cluster{
			ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
			ServiceCIDR: cfg.ServiceCIDR, ClusterCIDR: cfg.ClusterCIDR,
		},
	})
}

// wrap routes the join endpoints and checks the names in node users' creates before api.
func (n *nodeAccess) wrap(cfg *Config, api http.Handler) http.Handler {
	jh := n.joinHandler(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/kubesvc/v1/") {
			jh.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost {
			if u, ok := n.pki.Authenticate(r); ok {
				if node, isNode := join.NodeName(u.Name, u.Groups); isNode {
					if err := n.checkNodeCreate(r, node); err != nil {
						writeStatus(w, err)
						return
					}
				}
			}
		}
		api.ServeHTTP(w, r)
	})
}

// checkNodeCreate lets a node create only its own Node, its own Lease in kube-node-lease
// (NodeRestriction) and its own kube-dns EndpointSlice in kube-system; the request body is
// decoded to find the name and then restored.
func (n *nodeAccess) checkNodeCreate(r *http.Request, node string) error {
	p := strings.Trim(r.URL.Path, "/")
	var gr schema.GroupResource
	want := node
	switch p {
	case "api/v1/nodes":
		gr = corev1.Resource("nodes")
	case "apis/coordination.k8s.io/v1/namespaces/" + corev1.NamespaceNodeLease + "/leases":
		gr = coordinationv1.Resource("leases")
	case "apis/discovery.k8s.io/v1/namespaces/" + metav1.NamespaceSystem + "/endpointslices":
		gr, want = discoveryv1.Resource("endpointslices"), agent.DNSEndpointSliceName(node)
	default:
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, apiserver.DefaultMaxBodyBytes+1))
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return nil // the API server reports the malformed body
	}
	m, err := meta.Accessor(obj)
	if err != nil || m.GetName() != want {
		name := ""
		if err == nil {
			name = m.GetName()
		}
		return apierrors.NewForbidden(gr, name, fmt.Errorf("node %q may only create its own %s", node, gr.Resource))
	}
	return nil
}

// authorize is apiserver.Config.Authorize. Node users get reads, their own Node and Lease,
// their own kube-dns EndpointSlice (kube-system/kube-dns-<node>, internal/agent/dns.go),
// the status and deletion of pods bound to them, and events; the join token user gets
// nothing; every other authenticated user may do everything (no RBAC yet).
func (n *nodeAccess) authorize(u apiserver.User, verb string, gvr schema.GroupVersionResource, ns, name, sub string) bool {
	if u.Name == pki.JoinTokenUser {
		return false
	}
	node, isNode := join.NodeName(u.Name, u.Groups)
	if !isNode {
		return true
	}
	gr := gvr.GroupResource()
	read := verb == "get" || verb == "list" || verb == "watch"
	switch {
	case gr == corev1.Resource("pods") && sub != "" && sub != "status":
		return false // log, exec, attach, portforward, eviction, binding
	case read:
		return true
	case gr == corev1.Resource("nodes"):
		// create: the name was checked against the body (checkNodeCreate).
		return verb == "create" || name == node && (verb == "update" || verb == "patch" || verb == "delete")
	case gr == coordinationv1.Resource("leases"):
		return ns == corev1.NamespaceNodeLease && (verb == "create" || name == node && (verb == "update" || verb == "patch" || verb == "delete"))
	case gr == discoveryv1.Resource("endpointslices"):
		// create: the name was checked against the body (checkNodeCreate).
		return ns == metav1.NamespaceSystem && (verb == "create" || name == agent.DNSEndpointSliceName(node) && (verb == "update" || verb == "patch" || verb == "delete"))
	case gr == corev1.Resource("events") || gr == schema.GroupResource{Group: "events.k8s.io", Resource: "events"}:
		return verb == "create" || verb == "update" || verb == "patch"
	case gr == corev1.Resource("pods"):
		if (sub == "status" && (verb == "update" || verb == "patch")) || (sub == "" && verb == "delete") {
			return n.podOnNode(ns, name, node)
		}
		return false
	}
	return false
}

// podOnNode reports whether pod ns/name is bound to node.
func (n *nodeAccess) podOnNode(ns, name, node string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obj, err := n.store.Get(ctx, podsInfo, n.store.Key(podsInfo, ns, name))
	if err != nil {
		return false
	}
	pod, ok := obj.(*corev1.Pod)
	return ok && pod.Spec.NodeName == node
}

// connectHandler proxies pods/{log,exec,attach,portforward} to the agent of the pod's node, at
// the node's InternalIP and daemonEndpoints.kubeletEndpoint.port, keeping path and query.
func (n *nodeAccess) connectHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns, name, sub, ok := parsePodSubresource(r.URL.Path)
		if !ok {
			writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), ""))
			return
		}
		target, err := n.agentAddress(r.Context(), ns, name)
		if err != nil {
			writeStatus(w, err)
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme, pr.Out.URL.Host = "https", target
				pr.Out.Host = target
				pr.Out.Header.Del("Authorization")
			},
			Transport:      n.kubelet,
			FlushInterval:  -1,
			ModifyResponse: agentErrorToStatus,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				writeStatus(w, apierrors.NewInternalError(fmt.Errorf("%s of pod %s/%s on %s: %w", sub, ns, name, target, err)))
			},
		}
		proxy.ServeHTTP(w, r)
	})
}

// agentErrorToStatus turns an agent's plain-text error into a metav1.Status with the text as
// its message, as kube-apiserver does with a kubelet's (kubectl then prints
// "Error from server (BadRequest): <text>").
func agentErrorToStatus(resp *http.Response) error {
	if resp.StatusCode < 400 || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	msg := strings.TrimSpace(string(body))
	reason := metav1.StatusReasonBadRequest
	switch resp.StatusCode {
	case http.StatusNotFound:
		reason = metav1.StatusReasonNotFound
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusInternalServerError, http.StatusNotImplemented:
		reason = metav1.StatusReasonInternalError
	}
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Message: msg, Reason: reason, Code: int32(resp.StatusCode)}
	data, _ := json.Marshal(&st)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	resp.Header.Set("Content-Length", strconv.Itoa(len(data)))
	resp.Header.Set("Content-Type", "application/json")
	return nil
}

// agentAddress returns host:port of the agent running pod ns/name.
func (n *nodeAccess) agentAddress(ctx context.Context, ns, name string) (string, error) {
	obj, err := n.store.Get(ctx, podsInfo, n.store.Key(podsInfo, ns, name))
	if errors.Is(err, storage.ErrNotFound) {
		return "", apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	if err != nil {
		return "", apierrors.NewInternalError(err)
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	nobj, err := n.store.Get(ctx, nodesInfo, n.store.Key(nodesInfo, "", pod.Spec.NodeName))
	if err != nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("node %s of pod %s: %v", pod.Spec.NodeName, name, err))
	}
	node := nobj.(*corev1.Node)
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && ip == "" {
			ip = a.Address
		}
	}
	if ip == "" || port == 0 {
		return "", apierrors.NewBadRequest(fmt.Sprintf("node %s has no InternalIP or kubelet port", node.Name))
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(port))), nil
}

// parsePodSubresource parses /api/v1/namespaces/NS/pods/NAME/SUB.
func parsePodSubresource(path string) (ns, name, sub string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) != 7 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
		return "", "", "", false
	}
	return parts[3], parts[5], parts[6], true
}

// writeStatus writes err as a metav1.Status.
func writeStatus(w http.ResponseWriter, err error) {
	var st metav1.Status
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.Kind, st.APIVersion = "Status", "v1"
	data, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(data)
}

// startNodes starts this host's node agent (unless --disable-agent), joined over the server's
// own URL.
func (s *Server) startNodes(ctx context.Context, out io.Writer) error {
	if s.cfg.DisableAgent {
		return nil
	}
	acfg := agent.NewConfig()
	acfg.Server, acfg.Token, acfg.Out = s.URL, s.pki.Token, out
	acfg.DataDir = filepath.Join(s.cfg.DataDir, "agent")
	acfg.NodeName, acfg.NodeIP = s.cfg.NodeName, s.cfg.NodeIP
	a, err := agent.Start(ctx, acfg)
	if err != nil {
		return fmt.Errorf("node agent: %w", err)
	}
	s.nodes.agent = a
	return nil
}

// close stops the server's agent (its pods keep running).
func (n *nodeAccess) close() {
	if n != nil && n.agent != nil {
		n.agent.Close()
	}
}
