package server_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent"
	"kubesvc/internal/agent/join"
	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
)

// nodeClient joins s as node name and returns a client with that node identity.
func nodeClient(t *testing.T, s *server.Server, name string) kubernetes.Interface {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	creds, err := join.Join(ctx, s.URL, s.Token(), name)
	if err != nil {
		t.Fatalf("join as %s: %v", name, err)
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: s.URL, TLSClientConfig: rest.TLSClientConfig{CAData: creds.CAPEM, CertData: creds.CertPEM, KeyData: creds.KeyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestNodes_JoinRejectsWrongToken(t *testing.T) {
	s := servertest.StartTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := join.Join(ctx, s.URL, "not-the-token", "n1"); err == nil || !strings.Contains(err.Error(), "not signed with this token") {
		t.Fatalf("join with a wrong token: %v, want a CA mismatch", err)
	}
	// The join token itself has no API access.
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: s.URL, BearerToken: s.Token(), TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list pods with the join token: %v, want Forbidden", err)
	}
}

// TestNodes_Authorization checks the node identity's limits (Kubernetes' Node authorizer and
// NodeRestriction): its own Node, Lease and pods, reads, nothing of another node.
func TestNodes_Authorization(t *testing.T) {
	s := servertest.StartTestServer(t)
	admin, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := nodeClient(t, s, "n1"), nodeClient(t, s, "n2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		cs   kubernetes.Interface
		name string
	}{{n1, "n1"}, {n2, "n2"}} {
		if _, err := c.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("node %s creates itself: %v", c.name, err)
		}
	}
	for _, name := range []string{"p1", "p2"} {
		node := map[string]string{"p1": "n1", "p2": "n2"}[name]
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "luksa/kubia"}}}}
		if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lease := func(name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name)}}
	}
	dnsSlice := func(ns, name string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}}, AddressType: discoveryv1.AddressTypeIPv4}
	}
	if _, err := n2.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, dnsSlice("kube-system", agent.DNSEndpointSliceName("n2")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("node n2 creates its kube-dns slice: %v", err)
	}
	for _, tc := range []struct {
		name    string
		do      func() error
		allowed bool
	}{
		// The agents' kube-dns endpoints (DESIGN §5.4): each node writes only its own slice.
		{name: "create own kube-dns slice", allowed: true, do: func() error {
			_, err := n1.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, dnsSlice("kube-system", "kube-dns-n1"), metav1.CreateOptions{})
			return err
		}},
		{name: "update own kube-dns slice", allowed: true, do: func() error {
			_, err := n1.DiscoveryV1().EndpointSlices("kube-system").Patch(ctx, "kube-dns-n1", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		}},
		{name: "create another node's kube-dns slice", do: func() error {
			_, err := n1.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, dnsSlice("kube-system", "kube-dns-n3"), metav1.CreateOptions{})
			return err
		}},
		{name: "create a kube-dns slice outside kube-system", do: func() error {
			_, err := n1.DiscoveryV1().EndpointSlices("default").Create(ctx, dnsSlice("default", "kube-dns-n1"), metav1.CreateOptions{})
			return err
		}},
		{name: "update another node's kube-dns slice", do: func() error {
			_, err := n1.DiscoveryV1().EndpointSlices("kube-system").Patch(ctx, "kube-dns-n2", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		}},
		{name: "delete another node's kube-dns slice", do: func() error {
			return n1.DiscoveryV1().EndpointSlices("kube-system").Delete(ctx, "kube-dns-n2", metav1.DeleteOptions{})
		}},
		{name: "delete own kube-dns slice", allowed: true, do: func() error {
			return n1.DiscoveryV1().EndpointSlices("kube-system").Delete(ctx, "kube-dns-n1", metav1.DeleteOptions{})
		}},
		{name: "create another node", do: func() error {
			_, err := n1.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3"}}, metav1.CreateOptions{})
			return err
		}},
		{name: "update own node status", allowed: true, do: func() error {
			n, err := n1.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = n1.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{name: "update another node's status", do: func() error {
			n, err := n1.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = n1.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{name: "patch another node", do: func() error {
			_, err := n1.CoreV1().Nodes().Patch(ctx, "n2", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		}},
		{name: "delete another node", do: func() error { return n1.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}) }},
		{name: "create own lease", allowed: true, do: func() error {
			_, err := n1.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease("n1"), metav1.CreateOptions{})
			return err
		}},
		{name: "create another node's lease", do: func() error {
			_, err := n1.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease("n2"), metav1.CreateOptions{})
			return err
		}},
		{name: "update own pod's status", allowed: true, do: func() error {
			p, err := n1.CoreV1().Pods("default").Get(ctx, "p1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.Phase = corev1.PodRunning
			_, err = n1.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		{name: "update another node's pod status", do: func() error {
			p, err := n1.CoreV1().Pods("default").Get(ctx, "p2", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.Phase = corev1.PodRunning
			_, err = n1.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		{name: "delete another node's pod", do: func() error { return n1.CoreV1().Pods("default").Delete(ctx, "p2", metav1.DeleteOptions{}) }},
		{name: "create a pod", do: func() error {
			_, err := n1.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p3"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "x"}}}}, metav1.CreateOptions{})
			return err
		}},
		{name: "update a pod's spec", do: func() error {
			_, err := n1.CoreV1().Pods("default").Patch(ctx, "p1", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		}},
		{name: "create a configmap", do: func() error {
			_, err := n1.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
			return err
		}},
		{name: "read services", allowed: true, do: func() error {
			_, err := n1.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{name: "exec in a pod", do: func() error {
			return n1.CoreV1().RESTClient().Post().Namespace("default").Resource("pods").Name("p1").SubResource("exec").Param("command", "true").Do(ctx).Error()
		}},
		{name: "delete own pod", allowed: true, do: func() error { return n1.CoreV1().Pods("default").Delete(ctx, "p1", metav1.DeleteOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("allowed action failed: %v", err)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Fatalf("got %v, want Forbidden", err)
			}
		})
	}
}

// TestNodes_PodCIDRAtCreate checks node IPAM: each new Node gets the next /24 of
// --cluster-cidr in its create, a deleted node's subnet is reused, a preset one is kept.
func TestNodes_PodCIDRAtCreate(t *testing.T) {
	s := servertest.StartTestServer(t, func(c *server.Config) { c.ClusterCIDR = "10.200.0.0/22" })
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	create := func(name, cidr string) string {
		t.Helper()
		n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Spec.PodCIDR
	}
	for _, tc := range []struct {
		name, preset, want string
		deleteFirst        string
	}{
		{name: "a", want: "10.200.0.0/24"},
		{name: "b", preset: "10.200.2.0/24", want: "10.200.2.0/24"},
		{name: "c", want: "10.200.1.0/24"},
		{name: "d", want: "10.200.3.0/24"},
		{name: "e", want: ""},
		{name: "f", deleteFirst: "c", want: "10.200.1.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.deleteFirst != "" {
				if err := cs.CoreV1().Nodes().Delete(ctx, tc.deleteFirst, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if got := create(tc.name, tc.preset); got != tc.want {
				t.Fatalf("podCIDR %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				if _, err := netip.ParsePrefix(tc.want); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
