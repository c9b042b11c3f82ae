package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/peertest"
	"kubesvc/internal/server"
)

// API server choices (-apiserver).
const (
	apiKubesvc = "kubesvc"
	apiKube    = "kube-apiserver"
)

// apiServer is the one API server both proxies read.
type apiServer struct {
	name       string
	config     *rest.Config // admin, QPS 5000 / Burst 10000, protobuf
	kubeconfig string       // admin kubeconfig file for the proxies
	cidr       netip.Prefix // the Service CIDR
	stop       func()
}

// startAPIServer runs kubesvc's API server in this process (embedded etcd, only the namespace
// controller: the bench writes selectorless Services and their EndpointSlices itself), or
// kube-apiserver v1.37.2 on a peer etcd.
func startAPIServer(ctx context.Context, name, dir string) (*apiServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	switch name {
	case apiKubesvc:
		log, err := os.Create(filepath.Join(dir, "kubesvc-server.log"))
		if err != nil {
			return nil, err
		}
		cfg := server.NewConfig()
		cfg.DataDir = filepath.Join(dir, "kubesvc")
		cfg.BindAddress = "127.0.0.1"
		cfg.HTTPSPort = 0
		cfg.EtcdClientPort, cfg.EtcdPeerPort = 0, 0
		cfg.DisableAgent = true
		cfg.Controllers = []string{"namespace"}
		cfg.Out = log
		sctx, cancel := context.WithCancel(ctx)
		s, err := server.Start(sctx, cfg)
		if err != nil {
			cancel()
			log.Close()
			return nil, fmt.Errorf("start kubesvc server: %w", err)
		}
		return &apiServer{name: name, config: clientConfig(s.RESTConfig), kubeconfig: s.Kubeconfig,
			cidr: netip.MustParsePrefix(cfg.ServiceCIDR),
			stop: func() { s.Close(); cancel(); log.Close() }}, nil
	case apiKube:
		etcd, err := peertest.RunEtcd(ctx, peertest.EtcdConfig{Dir: filepath.Join(dir, "etcd")})
		if err != nil {
			return nil, err
		}
		const cidr = "10.96.0.0/12"
		api, err := peertest.RunKubeAPIServer(ctx, peertest.APIServerConfig{EtcdURL: etcd.ClientURL,
			ServiceCIDR: cidr, Dir: filepath.Join(dir, "kube-apiserver")})
		if err != nil {
			_ = etcd.Stop()
			return nil, err
		}
		return &apiServer{name: name, config: clientConfig(api.Config), kubeconfig: api.Kubeconfig,
			cidr: netip.MustParsePrefix(cidr),
			stop: func() { _ = api.Stop(); _ = etcd.Stop() }}, nil
	}
	return nil, fmt.Errorf("unknown API server %q (want %s or %s)", name, apiKubesvc, apiKube)
}

func clientConfig(rc *rest.Config) *rest.Config {
	c := rest.CopyConfig(rc)
	c.QPS, c.Burst = 5000, 10000
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return c
}

// nodeName is the node the proxies run as.
const nodeName = "bench-node"

// createNode registers the node the proxies run as: InternalIP nodeIP, podCIDR podLAN (what
// kube-proxy waits for at start, and where kubesvc's proxy reads its pod CIDR).
func createNode(ctx context.Context, cs kubernetes.Interface) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/hostname": nodeName}},
		Spec:       corev1.NodeSpec{PodCIDR: podLAN.String(), PodCIDRs: []string{podLAN.String()}},
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: nodeIP.String()},
		{Type: corev1.NodeHostName, Address: nodeName},
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "Bench"}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	return nil
}
