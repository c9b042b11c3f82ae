package service

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Messages of apimachinery's format checks, as kube-apiserver prints them.
const (
	msgDNSLabel     = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
	msgDNSSubdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
	msgPortRange    = "must be between 1 and 65535, inclusive"
	msgBadIP        = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
)

// errStrings renders an error list the way the Status causes read ("field: Type: value: detail").
func errStrings(el field.ErrorList) []string {
	out := []string{}
	for _, e := range el {
		out = append(out, e.Error())
	}
	return out
}

func checkErrs(t *testing.T, got field.ErrorList, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, errStrings(got)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func ptrTo[T any](v T) *T { return &v }

// svc builds a defaulted, valid ClusterIP service "web" in "default" and applies mutators.
func svc(mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	SetDefaults(s)
	return s
}

// stored is svc after a successful create on a single-stack IPv4 cluster: 10.96.0.10.
func stored(mut ...func(*corev1.Service)) *corev1.Service {
	s := svc(mut...)
	if s.Spec.Type != corev1.ServiceTypeExternalName {
		if s.Spec.ClusterIP == "" {
			s.Spec.ClusterIP = "10.96.0.10"
		}
		if len(s.Spec.ClusterIPs) == 0 {
			s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
		}
		if len(s.Spec.IPFamilies) == 0 {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		if s.Spec.IPFamilyPolicy == nil {
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
		}
	}
	return s
}

var (
	singleStack = NewStrategy(Config{})
	dualStack   = NewStrategy(Config{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00::/108")}})
	v6Stack     = NewStrategy(Config{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/108")}})
)

// fakeAllocator is a deterministic in-memory Allocator: dynamic IPs are .100, .101, ... (or
// ::100, ...), dynamic node ports 30100, 30101, ...; ranges are 10.96.0.0/12, fd00::/108 and
// 30000-32767 as on a kubeadm cluster.
type fakeAllocator struct {
	ips      map[string]bool
	ports    map[int]bool
	nextIP   map[corev1.IPFamily]int
	nextPort int
	full     bool
	log      []string
}

func newFakeAllocator(used ...string) *fakeAllocator {
	a := &fakeAllocator{ips: map[string]bool{}, ports: map[int]bool{}, nextIP: map[corev1.IPFamily]int{}, nextPort: 30100}
	for _, u := range used {
		if ip := net.ParseIP(u); ip != nil {
			a.ips[ip.String()] = true
		} else {
			var p int
			fmt.Sscan(u, &p)
			a.ports[p] = true
		}
	}
	return a
}

func (a *fakeAllocator) AllocateClusterIP(f corev1.IPFamily, ip net.IP) error {
	cidr := "10.96.0.0/12"
	if f == corev1.IPv6Protocol {
		cidr = "fd00::/108"
	}
	if !netip.MustParsePrefix(cidr).Contains(netip.MustParseAddr(ip.String())) {
		return fmt.Errorf("the provided IP (%v) is not in the valid range. The range of valid IPs is %s", ip, cidr)
	}
	if a.ips[ip.String()] {
		return fmt.Errorf("provided IP is already allocated")
	}
	a.ips[ip.String()] = true
	a.log = append(a.log, "ip "+ip.String())
	return nil
}

func (a *fakeAllocator) AllocateNextClusterIP(f corev1.IPFamily) (net.IP, error) {
	if a.full {
		return nil, ErrRangeFull
	}
	a.nextIP[f]++
	s := fmt.Sprintf("10.96.0.%d", 99+a.nextIP[f])
	if f == corev1.IPv6Protocol {
		s = fmt.Sprintf("fd00::%d", 99+a.nextIP[f])
	}
	a.ips[s] = true
	a.log = append(a.log, "ip "+s)
	return net.ParseIP(s), nil
}

func (a *fakeAllocator) AllocateNodePort(p int) error {
	if p < 30000 || p > 32767 {
		return fmt.Errorf("provided port is not in the valid range. The range of valid ports is 30000-32767")
	}
	if a.ports[p] {
		return fmt.Errorf("provided port is already allocated")
	}
	a.ports[p] = true
	a.log = append(a.log, fmt.Sprint("port ", p))
	return nil
}

func (a *fakeAllocator) AllocateNextNodePort() (int, error) {
	if a.full {
		return 0, ErrRangeFull
	}
	for a.ports[a.nextPort] {
		a.nextPort++
	}
	p := a.nextPort
	a.ports[p] = true
	a.log = append(a.log, fmt.Sprint("port ", p))
	return p, nil
}

func (a *fakeAllocator) allocations() string { return strings.Join(a.log, ",") }
