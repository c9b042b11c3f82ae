package proxytest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/peertest"
	"kubesvc/internal/server"
	"kubesvc/internal/testcluster"
)

// API servers the proxies can read (Env.APIServer).
const (
	// APIKubesvc: the proxies read the world's own kubesvc server.
	APIKubesvc = "kubesvc"
	// APIKube: the proxies are `kubesvc agent --kubeconfig` processes reading only the real
	// kube-apiserver v1.37.2, which a syncer fills from the world (issue 6 item 5).
	APIKube = "kube-apiserver"
)

// KubeAPIServerMissing reports why the KubeAPIServer variant cannot run ("" when it can): the
// peer binaries are built by hack/peers/build.sh (CI does).
func KubeAPIServerMissing() string {
	for _, b := range []string{peertest.EtcdBinary, peertest.KubeAPIServerBinary} {
		if _, ok := peertest.Path(b); !ok {
			dir, _ := peertest.Dir()
			return "peer binary " + b + " not found in " + dir + ": run hack/peers/build.sh etcd kube-apiserver (or set " + peertest.DirEnv + ")"
		}
	}
	return ""
}

// worldRanges are the world server's ranges, which kube-apiserver and the proxies get too:
// the syncer copies the world's ClusterIPs and NodePorts, so kube-apiserver must accept them.
func worldRanges() (serviceCIDR, nodePorts, clusterCIDR, clusterDNS string) {
	c := server.NewConfig() // testcluster worlds run with the defaults
	return c.ServiceCIDR, c.NodePortRange, c.ClusterCIDR, c.ClusterDNS
}

// kubeAPI is kube-apiserver (on its own etcd) on the world's LAN address of the test process,
// where the nodes' proxies reach it.
type kubeAPI struct {
	client     kubernetes.Interface
	kubeconfig string
}

// startKubeAPI starts etcd and kube-apiserver listening on testcluster.ServerIP with the
// world's Service and NodePort ranges, and creates Namespace there. Both stop when t ends.
func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	etcd, err := peertest.StartEtcd(t, peertest.EtcdConfig{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	svcCIDR, nodePorts, _, _ := worldRanges()
	api, err := peertest.RunKubeAPIServer(context.Background(), peertest.APIServerConfig{
		EtcdURL: etcd, Dir: t.TempDir(), BindAddress: testcluster.ServerIP.String(),
		ServiceCIDR: svcCIDR, NodePortRange: nodePorts,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log:\n%s", api.LogTail(30))
		}
		_ = api.Stop()
	})
	rc := rest.CopyConfig(api.Config)
	rc.QPS, rc.Burst = 500, 1000 // the syncer copies the whole world at once
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &kubeAPI{client: client, kubeconfig: api.Kubeconfig}
}
