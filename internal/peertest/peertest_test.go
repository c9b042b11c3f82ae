package peertest

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestKubeAPIServer_AllocatesClusterIP starts etcd and kube-apiserver and checks that a
// Service created through client-go gets a clusterIP and nodePort from the configured ranges,
// that /version reports KubeVersion and that objects land under the configured etcd prefix.
func TestKubeAPIServer_AllocatesClusterIP(t *testing.T) {
	SkipIfMissing(t, EtcdBinary, KubeAPIServerBinary)
	etcdURL, err := StartEtcd(t, EtcdConfig{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "/peertest-registry"
	cidr := netip.MustParsePrefix("10.123.0.0/24")
	rc, err := StartKubeAPIServer(t, APIServerConfig{
		EtcdURL:       etcdURL,
		EtcdPrefix:    prefix,
		ServiceCIDR:   cidr.String(),
		NodePortRange: "31000-31099",
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("get /version: %v", err)
	}
	if info.GitVersion != KubeVersion || info.Major != "1" || info.Minor != "37" {
		t.Errorf("/version = %s (major %q minor %q), want %s", info.GitVersion, info.Major, info.Minor, KubeVersion)
	}

	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !cidr.Contains(ip) {
		t.Errorf("clusterIP = %q, want an address in %s", svc.Spec.ClusterIP, cidr)
	}
	if np := svc.Spec.Ports[0].NodePort; np < 31000 || np > 31099 {
		t.Errorf("nodePort = %d, want 31000-31099", np)
	}

	ec, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer ec.Close()
	resp, err := ec.Get(ctx, prefix+"/services/specs/default/web", clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("etcd get: %v", err)
	}
	if resp.Count != 1 {
		t.Errorf("etcd keys for service web under %s = %d, want 1", prefix, resp.Count)
	}
}

// TestKubeControllerManager_ReconcilesService starts the full peer control plane and checks
// that the controllers run: a new namespace gets its default ServiceAccount and a Service
// gets an EndpointSlice.
func TestKubeControllerManager_ReconcilesService(t *testing.T) {
	SkipIfMissing(t, EtcdBinary, KubeAPIServerBinary, KubeControllerManagerBinary)
	etcdURL, err := StartEtcd(t, EtcdConfig{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := StartKubeAPIServer(t, APIServerConfig{EtcdURL: etcdURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := StartKubeControllerManager(t, rc, ControllerManagerConfig{}); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "peer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	if _, err := cs.CoreV1().Services("peer").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "db"},
			Ports:    []corev1.ServicePort{{Port: 5432}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}

	var last error
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if _, err := cs.CoreV1().ServiceAccounts("peer").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			last = err
			return false, nil
		}
		slices, err := cs.DiscoveryV1().EndpointSlices("peer").List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=db",
		})
		if err != nil {
			last = err
			return false, nil
		}
		if len(slices.Items) == 0 {
			last = apierrors.NewNotFound(discoveryv1.Resource("endpointslices"), "for service peer/db")
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("controllers did not reconcile: %v (last: %v)", err, last)
	}
}

// TestPeers_Version checks that the optional peers that take no server dependencies were built
// and stamped: kube-proxy reports KubeVersion and coredns starts far enough to print a version.
func TestPeers_Version(t *testing.T) {
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{name: "kube-proxy", bin: KubeProxyBinary, args: []string{"--version"}, want: "Kubernetes " + KubeVersion},
		{name: "kube-controller-manager", bin: KubeControllerManagerBinary, args: []string{"--version"}, want: "Kubernetes " + KubeVersion},
		{name: "kube-apiserver", bin: KubeAPIServerBinary, args: []string{"--version"}, want: "Kubernetes " + KubeVersion},
		{name: "etcd", bin: EtcdBinary, args: []string{"--version"}, want: "etcd Version: 3.7"},
		{name: "coredns", bin: CoreDNSBinary, args: []string{"-version"}, want: "CoreDNS-1."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			SkipIfMissing(t, tc.bin)
			p, _ := Path(tc.bin)
			cmd := exec.Command(p, tc.args...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", tc.bin, tc.args, err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("%s %v = %q, want it to contain %q", tc.bin, tc.args, out, tc.want)
			}
		})
	}
}
