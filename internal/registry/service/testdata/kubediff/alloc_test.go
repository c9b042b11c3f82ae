package kubediff

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	kvalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	svcreg "k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/core/service/ipallocator"
	"k8s.io/kubernetes/pkg/registry/core/service/portallocator"
	netutils "k8s.io/utils/net"

	"kubediff/internal/registry/service"
)

type world struct {
	ips   map[api.IPFamily]ipallocator.Interface
	ports portallocator.Interface
}

var cidrs = map[api.IPFamily]string{api.IPv4Protocol: "10.96.0.0/24", api.IPv6Protocol: "fd00::/120"}

func newWorld(t *testing.T, fams []api.IPFamily) *world {
	w := &world{ips: map[api.IPFamily]ipallocator.Interface{}}
	for _, f := range fams {
		_, c, _ := netutils.ParseCIDRSloppy(cidrs[f])
		a, err := ipallocator.NewInMemory(c)
		if err != nil {
			t.Fatal(err)
		}
		w.ips[f] = a
	}
	pr, _ := utilnet.ParsePortRange("30000-30099")
	p, err := portallocator.NewInMemory(*pr)
	if err != nil {
		t.Fatal(err)
	}
	w.ports = p
	// pre-allocated values
	for f, a := range w.ips {
		if f == api.IPv4Protocol {
			_ = a.Allocate(netutils.ParseIPSloppy("10.96.0.10"))
		} else {
			_ = a.Allocate(netutils.ParseIPSloppy("fd00::10"))
		}
	}
	_ = w.ports.Allocate(30001)
	return w
}

func (w *world) reserve(svc *corev1.Service) {
	for _, ip := range svc.Spec.ClusterIPs {
		if p := netutils.ParseIPSloppy(ip); p != nil {
			for _, a := range w.ips {
				_ = a.Allocate(p)
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			_ = w.ports.Allocate(int(p.NodePort))
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		_ = w.ports.Allocate(int(svc.Spec.HealthCheckNodePort))
	}
}

func (w *world) state() []string {
	var out []string
	for f, a := range w.ips {
		a.ForEach(func(ip net.IP) { out = append(out, string(f)+"="+ip.String()) })
	}
	for p := 30000; p < 30100; p++ {
		if w.ports.Has(p) {
			out = append(out, "np="+strconv.Itoa(p))
		}
	}
	return out
}

// ours: adapter implementing service.Allocator over a world, tracking allocations for revert.
type ours struct {
	w     *world
	ips   []net.IP
	fams  []api.IPFamily
	ports []int
}

func (o *ours) AllocateClusterIP(f corev1.IPFamily, ip net.IP) error {
	if err := o.w.ips[api.IPFamily(f)].Allocate(ip); err != nil {
		return err
	}
	o.ips, o.fams = append(o.ips, ip), append(o.fams, api.IPFamily(f))
	return nil
}
func (o *ours) AllocateNextClusterIP(f corev1.IPFamily) (net.IP, error) {
	ip, err := o.w.ips[api.IPFamily(f)].AllocateNext()
	if errors.Is(err, ipallocator.ErrFull) {
		return nil, service.ErrRangeFull
	}
	if err == nil {
		o.ips, o.fams = append(o.ips, ip), append(o.fams, api.IPFamily(f))
	}
	return ip, err
}
func (o *ours) AllocateNodePort(p int) error {
	if err := o.w.ports.Allocate(p); err != nil {
		return err
	}
	o.ports = append(o.ports, p)
	return nil
}
func (o *ours) AllocateNextNodePort() (int, error) {
	p, err := o.w.ports.AllocateNext()
	if err == nil {
		o.ports = append(o.ports, p)
	}
	return p, err
}
func (o *ours) revert() {
	for i, ip := range o.ips {
		_ = o.w.ips[o.fams[i]].Release(ip)
	}
	for _, p := range o.ports {
		_ = o.w.ports.Release(p)
	}
}
func (o *ours) apply(r service.Release) {
	for f, ip := range r.ClusterIPs {
		if a, ok := o.w.ips[api.IPFamily(f)]; ok {
			_ = a.Release(netutils.ParseIPSloppy(ip))
		}
	}
	for _, p := range r.NodePorts {
		_ = o.w.ports.Release(p)
	}
}

// normalizer maps values allocated (not in known) to placeholders by order of appearance.
type normalizer struct {
	known map[string]bool
	m     map[string]string
	n     int
}

func newNormalizer(svcs ...*corev1.Service) *normalizer {
	nz := &normalizer{known: map[string]bool{"10.96.0.10": true, "fd00::10": true, "30001": true}, m: map[string]string{}}
	for _, s := range svcs {
		if s == nil {
			continue
		}
		for _, ip := range s.Spec.ClusterIPs {
			nz.known[ip] = true
		}
		nz.known[s.Spec.ClusterIP] = true
		for _, p := range s.Spec.Ports {
			nz.known[strconv.Itoa(int(p.NodePort))] = true
		}
		nz.known[strconv.Itoa(int(s.Spec.HealthCheckNodePort))] = true
	}
	return nz
}

func (nz *normalizer) v(s string) string {
	if s == "" || s == "0" || nz.known[s] {
		return s
	}
	if r, ok := nz.m[s]; ok {
		return r
	}
	nz.n++
	nz.m[s] = fmt.Sprintf("<A%d>", nz.n)
	return nz.m[s]
}

func (nz *normalizer) svc(s *corev1.Service) string {
	if s == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "type=%s cip=%s cips=[", s.Spec.Type, nz.v(s.Spec.ClusterIP))
	for _, ip := range s.Spec.ClusterIPs {
		b.WriteString(nz.v(ip) + ",")
	}
	fmt.Fprintf(&b, "] fams=%v pol=%v ports=[", s.Spec.IPFamilies, ptrStr(s.Spec.IPFamilyPolicy))
	for _, p := range s.Spec.Ports {
		fmt.Fprintf(&b, "%s/%s/%d/np=%s,", p.Name, p.Protocol, p.Port, nz.v(strconv.Itoa(int(p.NodePort))))
	}
	fmt.Fprintf(&b, "] hc=%s etp=%s itp=%v alb=%v lbc=%v status=%d", nz.v(strconv.Itoa(int(s.Spec.HealthCheckNodePort))),
		s.Spec.ExternalTrafficPolicy, ptrStr(s.Spec.InternalTrafficPolicy), ptrStr(s.Spec.AllocateLoadBalancerNodePorts), ptrStr(s.Spec.LoadBalancerClass), len(s.Status.LoadBalancer.Ingress))
	return b.String()
}

func (nz *normalizer) state(st []string) string {
	var out []string
	for _, s := range st {
		k, v, _ := strings.Cut(s, "=")
		out = append(out, k+"="+nz.v(v))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (nz *normalizer) text(s string) string {
	for k, v := range nz.m {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

func ptrStr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func fromInternal(t *testing.T, in *api.Service) *corev1.Service {
	out := &corev1.Service{}
	if err := legacyscheme.Scheme.Convert(in, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

type outcome struct {
	obj   string
	err   string
	state string
}

func kubeCreate(t *testing.T, w *world, primary api.IPFamily, in *corev1.Service) (*corev1.Service, string) {
	svc := toInternal(t, in.DeepCopy())
	al := makeAlloc(primary, w.ips, w.ports)
	normalizeClusterIPs(After{svc}, Before{nil})
	txn, err := al.allocateCreate(svc, false)
	if err != nil {
		return nil, err.Error()
	}
	svcreg.Strategy.PrepareForCreate(context.Background(), svc)
	if el := kvalidation.ValidateServiceCreate(svc); len(el) > 0 {
		txn.Revert()
		return fromInternal(t, svc), render(el)
	}
	txn.Commit()
	return fromInternal(t, svc), ""
}

func oursCreate(s *service.Strategy, w *world, in *corev1.Service) (*corev1.Service, string) {
	svc := in.DeepCopy()
	o := &ours{w: w}
	if err := s.BeginCreate(svc, o); err != nil {
		o.revert()
		return nil, err.Error()
	}
	s.PrepareForCreate(context.Background(), svc)
	if el := s.Validate(context.Background(), svc); len(el) > 0 {
		o.revert()
		return svc, render(el)
	}
	return svc, ""
}

func kubeUpdate(t *testing.T, w *world, primary api.IPFamily, in, oldIn *corev1.Service) (res *corev1.Service, e string) {
	defer func() {
		if p := recover(); p != nil {
			_ = fmt.Sprintf("KUBE PANIC %v\nold %s\nnew %s", p, js(oldIn), js(in))
			res, e = nil, "PANIC"
		}
	}()
	svc, old := toInternal(t, in.DeepCopy()), toInternal(t, oldIn.DeepCopy())
	al := makeAlloc(primary, w.ips, w.ports)
	(&fakeREST{primaryIPFamily: primary}).defaultOnReadService(old)
	patchAllocatedValues(After{svc}, Before{old})
	normalizeClusterIPs(After{svc}, Before{old})
	txn, err := al.allocateUpdate(After{svc}, Before{old}, false)
	if err != nil {
		return nil, err.Error()
	}
	svcreg.Strategy.PrepareForUpdate(context.Background(), svc, old)
	if el := kvalidation.ValidateServiceUpdate(svc, old); len(el) > 0 {
		txn.Revert()
		return fromInternal(t, svc), render(el)
	}
	txn.Commit()
	return fromInternal(t, svc), ""
}

func oursUpdate(s *service.Strategy, w *world, in, oldIn *corev1.Service) (*corev1.Service, string) {
	svc, old := in.DeepCopy(), oldIn.DeepCopy()
	o := &ours{w: w}
	rel, err := s.BeginUpdate(svc, old, o)
	if err != nil {
		o.revert()
		return nil, err.Error()
	}
	s.PrepareForUpdate(context.Background(), svc, old)
	if el := s.ValidateUpdate(context.Background(), svc, old); len(el) > 0 {
		o.revert()
		return svc, render(el)
	}
	o.apply(rel)
	return svc, ""
}

func mutate(r *rand.Rand, old *corev1.Service) *corev1.Service {
	if r.Intn(6) == 0 {
		n := genService(r)
		n.Name = old.Name
		legacyscheme.Scheme.Default(n)
		return n
	}
	s := old.DeepCopy()
	for k := 0; k < 1+r.Intn(3); k++ {
		switch r.Intn(14) {
		case 0, 1:
			s.Spec.Type = pick(r, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
			if s.Spec.Type == corev1.ServiceTypeExternalName && r.Intn(2) == 0 {
				s.Spec.ExternalName = "example.com"
			}
		case 2:
			s.Spec.ClusterIP = ""
			if r.Intn(2) == 0 {
				s.Spec.ClusterIPs = nil
			}
		case 3:
			s.Spec.ClusterIPs = nil
		case 4:
			s.Spec.IPFamilyPolicy = pick(r, nil, ptr(corev1.IPFamilyPolicySingleStack), ptr(corev1.IPFamilyPolicyPreferDualStack), ptr(corev1.IPFamilyPolicyRequireDualStack))
		case 5:
			s.Spec.IPFamilies = pick(r, nil, []corev1.IPFamily{"IPv4"}, []corev1.IPFamily{"IPv6"}, []corev1.IPFamily{"IPv4", "IPv6"}, []corev1.IPFamily{"IPv6", "IPv4"})
		case 6:
			for i := range s.Spec.Ports {
				if r.Intn(2) == 0 {
					s.Spec.Ports[i].NodePort = pick(r, int32(0), 30002, 30012)
				}
			}
		case 7:
			s.Spec.ExternalTrafficPolicy = pick(r, corev1.ServiceExternalTrafficPolicy(""), "Local", "Cluster")
		case 8:
			s.Spec.HealthCheckNodePort = pick(r, int32(0), 30014)
		case 9:
			s.Spec.AllocateLoadBalancerNodePorts = pick(r, nil, ptr(true), ptr(false))
		case 10:
			if len(s.Spec.Ports) > 0 {
				s.Spec.Ports = s.Spec.Ports[1:]
			} else {
				s.Spec.Ports = []corev1.ServicePort{{Name: "x", Port: 81, Protocol: "TCP"}}
			}
		case 11:
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: pick(r, "x", "y", ""), Port: pick(r, int32(80), 53, 99), Protocol: pick(r, corev1.ProtocolTCP, corev1.ProtocolUDP)})
		case 12:
			s.Spec.ClusterIPs = append(append([]string{}, s.Spec.ClusterIPs...), pick(r, "fd00::7", "10.96.0.7", ""))
		case 13:
			s.Spec.Selector = pick(r, nil, map[string]string{"app": "x"})
			s.Spec.LoadBalancerClass = pick(r, nil, ptr("example.com/lb"))
		}
	}
	legacyscheme.Scheme.Default(s)
	return s
}

var ipErrRe = regexp.MustCompile(`failed to allocate IP [0-9a-f:.]+`)

var seed = seedFromEnv(7)

func TestAllocDiff(t *testing.T) {
	r := rand.New(rand.NewSource(seed))
	configs := [][]api.IPFamily{{api.IPv4Protocol}, {api.IPv6Protocol}, {api.IPv4Protocol, api.IPv6Protocol}, {api.IPv6Protocol, api.IPv4Protocol}}
	mismatch, creates, updates, okUpdates := 0, 0, 0, 0
	for i := 0; i < 60000 && mismatch < 10; i++ {
		fams := configs[r.Intn(len(configs))]
		var prefixes []netip.Prefix
		for _, f := range fams {
			prefixes = append(prefixes, netip.MustParsePrefix(cidrs[f]))
		}
		s := service.NewStrategy(service.Config{ServiceCIDRs: prefixes})
		raw := genService(r)
		if r.Intn(4) > 0 {
			raw = genValidService(r)
		}
		legacyscheme.Scheme.Default(raw)
		kw, ow := newWorld(t, fams), newWorld(t, fams)
		kobj, kerr := kubeCreate(t, kw, fams[0], raw)
		oobj, oerr := oursCreate(s, ow, raw)
		nzK, nzO := newNormalizer(raw), newNormalizer(raw)
		kres := outcome{nzK.svc(kobj), nzK.text(kerr), nzK.state(kw.state())}
		ores := outcome{nzO.svc(oobj), nzO.text(oerr), nzO.state(ow.state())}
		if kobj == nil { // kube leaks IPs allocated before a failing one (repair loop frees them)
			kres.state, ores.state = "", ""
		}
		creates++
		if kres.err != ores.err && ipErrRe.ReplaceAllString(kres.err, "X") == ipErrRe.ReplaceAllString(ores.err, "X") {
			continue // kube picks the failing family in map order
		}
		if kres != ores {
			mismatch++
			t.Errorf("create differs (cluster %v) for %s:\nkube %+v\nours %+v", fams, js(raw), kres, ores)
			continue
		}
		if kerr != "" {
			continue
		}
		// update phase: old = kube's created object, stored in both worlds
		old := kobj
		for j := 0; j < 6; j++ {
			nw := mutate(r, old)
			kw2, ow2 := newWorld(t, fams), newWorld(t, fams)
			kw2.reserve(old)
			ow2.reserve(old)
			kobj2, kerr2 := kubeUpdate(t, kw2, fams[0], nw, old)
			oobj2, oerr2 := oursUpdate(s, ow2, nw, old)
			nzK, nzO := newNormalizer(nw, old), newNormalizer(nw, old)
			kres := outcome{nzK.svc(kobj2), nzK.text(kerr2), nzK.state(kw2.state())}
			ores := outcome{nzO.svc(oobj2), nzO.text(oerr2), nzO.state(ow2.state())}
			if kobj2 == nil {
				kres.state, ores.state = "", ""
			}
			if kerr2 == "PANIC" && strings.Contains(oerr2, "is not configured on this cluster") {
				break
			}
			updates++
			if kres.err != ores.err && ipErrRe.ReplaceAllString(kres.err, "X") == ipErrRe.ReplaceAllString(ores.err, "X") {
				break
			}
			if kres != ores {
				mismatch++
				t.Errorf("update differs (cluster %v)\nold %s\nnew %s:\nkube %+v\nours %+v", fams, js(old), js(nw), kres, ores)
				break
			}
			if kerr2 == "" {
				okUpdates++
				old = kobj2
			}
		}
	}
	t.Logf("creates=%d updates=%d successful updates=%d", creates, updates, okUpdates)
}
