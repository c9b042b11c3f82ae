package dnsconfig

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodResolv(t *testing.T) {
	host := ParseResolvConf([]byte("# comment\nnameserver 203.0.113.53\nnameserver 203.0.113.54\nsearch lan.test corp.test\noptions edns0 timeout:2\n"))
	cfg := Config{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", Host: host}
	pod := func(policy corev1.DNSPolicy, hostNet bool, dc *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns1"}, Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: dc}}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		cfg  *Config
		want string
	}{
		{name: "DNS-R-01 ClusterFirst", pod: pod("", false, nil),
			want: "search ns1.svc.cluster.local svc.cluster.local cluster.local lan.test corp.test\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{name: "ClusterFirst on host network falls back to Default", pod: pod(corev1.DNSClusterFirst, true, nil),
			want: "search lan.test corp.test\nnameserver 203.0.113.53\nnameserver 203.0.113.54\noptions edns0 timeout:2\n"},
		{name: "ClusterFirstWithHostNet", pod: pod(corev1.DNSClusterFirstWithHostNet, true, nil),
			want: "search ns1.svc.cluster.local svc.cluster.local cluster.local lan.test corp.test\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{name: "no cluster DNS falls back to Default", pod: pod(corev1.DNSClusterFirst, false, nil), cfg: &Config{ClusterDomain: "cluster.local", Host: host},
			want: "search lan.test corp.test\nnameserver 203.0.113.53\nnameserver 203.0.113.54\noptions edns0 timeout:2\n"},
		{name: "DNS-R-02 None with dnsConfig", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{
			Nameservers: []string{"192.0.2.1"}, Searches: []string{"a.test", "a.test"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
		}), want: "search a.test\nnameserver 192.0.2.1\noptions ndots:2 edns0\n"},
		{name: "dnsConfig merges into ClusterFirst, pod option wins, max 3 nameservers", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, Searches: []string{"cluster.local", "x.test"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}},
		}), want: "search ns1.svc.cluster.local svc.cluster.local cluster.local lan.test corp.test x.test\nnameserver 10.96.0.10\nnameserver 192.0.2.1\nnameserver 192.0.2.2\noptions ndots:1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				c = *tc.cfg
			}
			if diff := cmp.Diff(tc.want, string(PodResolv(tc.pod, c).Format())); diff != "" {
				t.Fatalf("resolv.conf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	base := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want string
	}{
		{name: "pod name", want: base + "10.244.1.5\tkubia-abc\n"},
		{name: "hostname and subdomain", spec: corev1.PodSpec{Hostname: "web-0", Subdomain: "web"},
			want: base + "10.244.1.5\tweb-0.web.ns1.svc.cluster.local\tweb-0\n"},
		{name: "host aliases", spec: corev1.PodSpec{HostAliases: []corev1.HostAlias{{IP: "192.0.2.9", Hostnames: []string{"foo.local", "bar.local"}}}},
			want: base + "10.244.1.5\tkubia-abc\n\n# Entries added by HostAliases.\n192.0.2.9\tfoo.local\tbar.local\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kubia-abc", Namespace: "ns1"}, Spec: tc.spec}
			if diff := cmp.Diff(tc.want, string(HostsFile(pod, []string{"10.244.1.5"}, "cluster.local"))); diff != "" {
				t.Fatalf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelHostname(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pod     corev1.Pod
		want    string
		wantErr bool
	}{
		{name: "pod name", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kubia-abc", Namespace: "d"}}, want: "kubia-abc"},
		{name: "spec hostname", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "d"}, Spec: corev1.PodSpec{Hostname: "h"}}, want: "h"},
		{name: "long name truncated to 63 without trailing dash", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 62) + "-bc", Namespace: "d"}}, want: strings.Repeat("a", 62)},
		{name: "FQDN", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "d"}, Spec: corev1.PodSpec{Hostname: "h", Subdomain: "s", SetHostnameAsFQDN: ptr.To(true)}}, want: "h.s.d.svc.cluster.local"},
		{name: "FQDN too long", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "a-very-long-namespace-name-indeed"}, Spec: corev1.PodSpec{Hostname: "some-host", Subdomain: "some-subdomain", SetHostnameAsFQDN: ptr.To(true)}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KernelHostname(&tc.pod, "cluster.local")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
