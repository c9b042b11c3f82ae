package allocator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"kubesvc/internal/registry/service"
	"kubesvc/internal/storage"
	"kubesvc/internal/storage/storagetest"
)

// env is an allocator over a real etcd and store, writing Services the way the API server
// does: defaults, BeforeCreate/BeforeUpdate/BeforeDelete, then one store write with the
// returned transaction, redone on storage.ErrRace.
type env struct {
	t     *testing.T
	ctx   context.Context
	store *storage.Store
	a     *Allocator
}

func newEnv(t *testing.T, cidrs string, ports string) *env {
	t.Helper()
	c := storagetest.StartEtcd(t)
	return newEnvOn(t, c, cidrs, ports)
}

func newEnvOn(t *testing.T, c *clientv3.Client, cidrs string, ports string) *env {
	t.Helper()
	st := storage.New(storage.Config{Client: c})
	t.Cleanup(st.Close)
	var ps []netip.Prefix
	for _, s := range strings.Split(cidrs, ",") {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	pr, err := ParsePortRange(ports)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: st, ServiceCIDRs: ps, NodePortRange: pr, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), store: st, a: a}
	t.Cleanup(func() {
		// Invariant: the keys match the Services exactly.
		res, err := a.Repair(context.Background())
		if err != nil {
			t.Errorf("final repair: %v", err)
		} else if len(res.Removed)+len(res.Created)+len(res.Reowned)+len(res.Problems) > 0 {
			t.Errorf("allocations disagree with the services: %+v", res)
		}
		a.Close()
	})
	return e
}

func svc(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Port: 80}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports},
	}
}

func (e *env) key(name string) string { return e.store.Key(servicesInfo, "default", name) }

// create writes a new Service like the API server's create path.
func (e *env) create(in *corev1.Service, dryRun bool) (*corev1.Service, error) {
	for attempt := 0; ; attempt++ {
		s := in.DeepCopy()
		s.UID = types.UID(uuid.NewUUID())
		service.SetDefaults(s)
		txn, err := e.a.BeforeCreate(e.ctx, s, dryRun)
		if err != nil {
			return nil, err
		}
		if errs := e.a.Strategy().Validate(e.ctx, s); len(errs) > 0 {
			return nil, errs.ToAggregate()
		}
		out, err := e.store.Create(e.ctx, servicesInfo, e.key(s.Name), s, txn, dryRun)
		if errors.Is(err, storage.ErrRace) && attempt < 8 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out.(*corev1.Service), nil
	}
}

func (e *env) mustCreate(in *corev1.Service) *corev1.Service {
	e.t.Helper()
	out, err := e.create(in, false)
	if err != nil {
		e.t.Fatalf("create %s: %v", in.Name, err)
	}
	return out
}

// update applies mutate to the stored Service like the API server's update path.
func (e *env) update(name string, mutate func(*corev1.Service), dryRun bool) (*corev1.Service, error) {
	out, err := e.store.GuaranteedUpdate(e.ctx, servicesInfo, e.key(name), func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		old := cur.(*corev1.Service)
		s := old.DeepCopy()
		mutate(s)
		service.SetDefaults(s)
		txn, err := e.a.BeforeUpdate(e.ctx, s, old, dryRun)
		if err != nil {
			return nil, nil, err
		}
		e.a.Strategy().PrepareForUpdate(e.ctx, s, old)
		if errs := e.a.Strategy().ValidateUpdate(e.ctx, s, old); len(errs) > 0 {
			return nil, nil, errs.ToAggregate()
		}
		return s, txn, nil
	}, dryRun)
	if err != nil {
		return nil, err
	}
	return out.(*corev1.Service), nil
}

func (e *env) delete(name string) {
	e.t.Helper()
	_, err := e.store.Delete(e.ctx, servicesInfo, e.key(name), func(cur runtime.Object) (*storage.Txn, error) {
		return e.a.BeforeDelete(e.ctx, cur)
	}, false)
	if err != nil {
		e.t.Fatalf("delete %s: %v", name, err)
	}
}

// keys returns the allocation keys in etcd, without the prefix, e.g. "nodeports/30000".
func (e *env) keys() map[string]string {
	e.t.Helper()
	resp, err := e.a.client.Get(e.ctx, e.a.root, clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), e.a.root)] = string(kv.Value)
	}
	return out
}

// waitView polls until the allocator's local view has ips addresses and ports node ports.
func (e *env) waitView(ips, ports int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, gotPorts := e.a.Used()
		n := 0
		for _, c := range got {
			n += c
		}
		if n == ips && gotPorts == ports {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("view has %d IPs and %d ports, want %d and %d", n, gotPorts, ips, ports)
		}
		<-tick.C
	}
}

func ipIndex(t *testing.T, r *ipRange, s string) uint64 {
	t.Helper()
	ip := netip.MustParseAddr(s)
	if !r.contains(ip) {
		t.Fatalf("%s is not in %v", s, r.prefix)
	}
	return r.index(ip)
}

func TestAllocator_DynamicBandFirst(t *testing.T) {
	// SVC-IP-02/03: /27 has 30 addresses, static band .1-.16, dynamic band .17-.30.
	e := newEnv(t, "10.96.0.0/27", "30000-30019")
	r := e.a.ranges[corev1.IPv4Protocol]
	seen := map[string]bool{}
	for i := range 30 {
		s := e.mustCreate(svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeClusterIP))
		if seen[s.Spec.ClusterIP] {
			t.Fatalf("%s got %s twice", s.Name, s.Spec.ClusterIP)
		}
		seen[s.Spec.ClusterIP] = true
		idx := ipIndex(t, r, s.Spec.ClusterIP)
		if i < 14 && idx < r.offset {
			t.Errorf("service %d got %s from the static band while the dynamic band has room", i, s.Spec.ClusterIP)
		}
		if i >= 14 && idx >= r.offset {
			t.Errorf("service %d got %s from the dynamic band, which is full", i, s.Spec.ClusterIP)
		}
	}
	// SVC-IP-03: both bands full → kube's 500.
	_, err := e.create(svc("full", corev1.ServiceTypeClusterIP), false)
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "range is full") {
		t.Fatalf("create in a full range: %v, want InternalError ... range is full", err)
	}
	if got := len(e.keys()); got != 30 {
		t.Errorf("%d allocation keys, want 30", got)
	}
}

func TestAllocator_NodePortBands(t *testing.T) {
	// SVC-NP-02: 100 ports → static band 30000-30015, dynamic 30016-30099; one NodePort
	// service with 84 ports fills the dynamic band exactly.
	e := newEnv(t, "10.96.0.0/24", "30000-30099")
	var ports []corev1.ServicePort
	for i := range 84 {
		ports = append(ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(1000 + i)})
	}
	s := e.mustCreate(svc("wide", corev1.ServiceTypeNodePort, ports...))
	for _, p := range s.Spec.Ports {
		if p.NodePort < 30016 || p.NodePort > 30099 {
			t.Errorf("port %s got nodePort %d outside the dynamic band", p.Name, p.NodePort)
		}
	}
	next := e.mustCreate(svc("next", corev1.ServiceTypeNodePort))
	if np := next.Spec.Ports[0].NodePort; np < 30000 || np > 30015 {
		t.Errorf("with the dynamic band full, got nodePort %d, want the static band", np)
	}
}

func TestAllocator_ChosenValues(t *testing.T) {
	e := newEnv(t, "10.96.0.0/24", "30000-30099")
	e.mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "holder", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.5", ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort: 30050, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30010}}}})
	tests := []struct {
		name    string
		svc     *corev1.Service
		dryRun  bool
		wantErr string // substring; "" succeeds
	}{
		{name: "SVC-IP-04 free IP in the static band", svc: withIP(svc("a", ""), "10.96.0.6")},
		{name: "SVC-IP-04 taken IP", svc: withIP(svc("b", ""), "10.96.0.5"), wantErr: "spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"},
		{name: "SVC-IP-04 IP outside the CIDR", svc: withIP(svc("c", ""), "10.97.0.5"), wantErr: "failed to allocate IP 10.97.0.5: the provided network does not match the current range"},
		{name: "SVC-IP-01 broadcast address", svc: withIP(svc("d", ""), "10.96.0.255"), wantErr: "the provided network does not match the current range"},
		{name: "SVC-IP-05 dry run reports the range", svc: withIP(svc("e", ""), "10.97.0.5"), dryRun: true, wantErr: "the provided IP (10.97.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/24"},
		{name: "SVC-IP-05 dry run does not check taken IPs", svc: withIP(svc("f", ""), "10.96.0.5"), dryRun: true},
		{name: "SVC-NP-05 free nodePort", svc: svc("g", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30011})},
		{name: "SVC-NP-05 taken nodePort", svc: svc("h", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30010}), wantErr: "spec.ports[0].nodePort: Invalid value: 30010: provided port is already allocated"},
		{name: "SVC-NP-06 healthCheckNodePort counts as taken", svc: svc("i", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30050}), wantErr: "provided port is already allocated"},
		{name: "SVC-NP-05 nodePort out of range", svc: svc("j", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 8080}), wantErr: "provided port is not in the valid range. The range of valid ports is 30000-30099"},
		{name: "SVC-NP-05 dry run checks taken nodePorts", svc: svc("k", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30010}), dryRun: true, wantErr: "provided port is already allocated"},
		{name: "SVC-NP-04 TCP and UDP share a requested nodePort", svc: svc("l", corev1.ServiceTypeNodePort,
			corev1.ServicePort{Name: "u", Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30012}, corev1.ServicePort{Name: "t", Port: 53, Protocol: corev1.ProtocolTCP})},
		{name: "SVC-NP-05 two ports asking for one nodePort", svc: svc("m", corev1.ServiceTypeNodePort,
			corev1.ServicePort{Name: "a", Port: 80, NodePort: 30013}, corev1.ServicePort{Name: "b", Port: 81, NodePort: 30013}), wantErr: "spec.ports[1].nodePort: Invalid value: 30013: provided port is already allocated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.keys()
			out, err := e.create(tc.svc, tc.dryRun)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("create: %v, want an error containing %q", err, tc.wantErr)
			}
			after := e.keys()
			if tc.dryRun || err != nil {
				if len(after) != len(before) {
					t.Errorf("a failed or dry-run create changed the allocations: %d → %d keys", len(before), len(after))
				}
				return
			}
			if out.Spec.ClusterIP != "" && after["ipaddresses/"+out.Spec.ClusterIP] != Owner(out) {
				t.Errorf("ipaddresses/%s = %q, want %q", out.Spec.ClusterIP, after["ipaddresses/"+out.Spec.ClusterIP], Owner(out))
			}
			for _, p := range out.Spec.Ports {
				if p.NodePort != 0 && after[fmt.Sprintf("nodeports/%d", p.NodePort)] != Owner(out) {
					t.Errorf("nodeports/%d not owned by %s", p.NodePort, Owner(out))
				}
			}
		})
	}
}

func withIP(s *corev1.Service, ip string) *corev1.Service {
	s.Spec.ClusterIP = ip
	return s
}

func TestAllocator_DryRunPlaceholders(t *testing.T) {
	// kube's dry-run allocators do not search: the network address, and node ports from
	// 32769 up (one above the highest this request reserved so far).
	e := newEnv(t, "10.96.0.0/24", "30000-30099")
	out, err := e.create(svc("d", corev1.ServiceTypeNodePort, corev1.ServicePort{Name: "a", Port: 80}, corev1.ServicePort{Name: "b", Port: 81, NodePort: 30020}, corev1.ServicePort{Name: "c", Port: 82}), true)
	if err != nil {
		t.Fatal(err)
	}
	if out.Spec.ClusterIP != "10.96.0.0" {
		t.Errorf("dry-run clusterIP %s, want the network address", out.Spec.ClusterIP)
	}
	var got []int32
	for _, p := range out.Spec.Ports {
		got = append(got, p.NodePort)
	}
	if fmt.Sprint(got) != "[32769 30020 32770]" {
		t.Errorf("dry-run nodePorts %v, want [32769 30020 32770]", got)
	}
	if n := len(e.keys()); n != 0 {
		t.Errorf("dry run wrote %d keys", n)
	}
}

func TestAllocator_ReleaseOnDeleteAndTypeChange(t *testing.T) {
	e := newEnv(t, "10.96.0.0/24", "30000-30099")
	lb := e.mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}}})
	if n := len(e.keys()); n != 4 { // IP, two nodePorts, healthCheckNodePort
		t.Fatalf("%d keys after creating a LoadBalancer+Local service, want 4: %v", n, e.keys())
	}
	steps := []struct {
		name   string
		mutate func(*corev1.Service)
		want   int
	}{
		{name: "SVC-U-05 LB Local → Cluster frees the healthCheckNodePort", mutate: func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, want: 3},
		{name: "SVC-U-05 dropping a port frees its nodePort", mutate: func(s *corev1.Service) { s.Spec.Ports = s.Spec.Ports[:1] }, want: 2},
		{name: "SVC-U-05 → ClusterIP frees every nodePort", mutate: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }, want: 1},
		{name: "SVC-U-05 → NodePort allocates again", mutate: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }, want: 2},
		{name: "SVC-U-05 → ExternalName frees IP and nodePorts", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "example.com"
		}, want: 0},
		{name: "SVC-U-05 ExternalName → ClusterIP allocates a fresh IP", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.ExternalName = ""
		}, want: 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if _, err := e.update("lb", st.mutate, false); err != nil {
				t.Fatal(err)
			}
			if got := e.keys(); len(got) != st.want {
				t.Errorf("%d keys, want %d: %v", len(got), st.want, got)
			}
		})
	}
	t.Run("SVC-U-01 re-applying keeps the allocated values", func(t *testing.T) {
		cur, err := e.update("lb", func(s *corev1.Service) {}, false)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.update("lb", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }, false)
		if err != nil {
			t.Fatal(err)
		}
		if again.Spec.ClusterIP != cur.Spec.ClusterIP {
			t.Errorf("clusterIP %s after re-apply, want %s", again.Spec.ClusterIP, cur.Spec.ClusterIP)
		}
	})
	t.Run("SVC-U-06 delete frees everything", func(t *testing.T) {
		e.delete("lb")
		if got := e.keys(); len(got) != 0 {
			t.Errorf("keys after delete: %v", got)
		}
	})
	if lb.Spec.HealthCheckNodePort == 0 {
		t.Errorf("LoadBalancer+Local service got no healthCheckNodePort")
	}
}

func TestAllocator_ExhaustionRecovers(t *testing.T) {
	// A /29 has 6 usable addresses.
	e := newEnv(t, "10.96.0.0/29", "30000-30002")
	for i := range 6 {
		e.mustCreate(svc(fmt.Sprintf("s%d", i), ""))
	}
	// The "range is full" answer comes from the local view; let it see all six first (a lagging
	// view only makes the create lose the etcd race and retry, which the API server does).
	e.waitView(6, 0)
	if _, err := e.create(svc("x", ""), false); !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed to allocate a serviceIP") {
		t.Fatalf("create in a full range: %v, want kube's InternalError", err)
	}
	e.delete("s3")
	e.waitView(5, 0)
	if _, err := e.create(svc("x", ""), false); err != nil {
		t.Fatalf("create after a delete freed an address: %v", err)
	}
	// Node ports: 3 ports, then full.
	if _, err := e.update("s0", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 1}, {Name: "b", Port: 2}, {Name: "c", Port: 3}}
	}, false); err != nil {
		t.Fatal(err)
	}
	_, err := e.update("s1", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }, false)
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed to allocate a nodePort: range is full") {
		t.Fatalf("NodePort in a full port range: %v, want InternalError failed to allocate a nodePort: range is full", err)
	}
}

func TestAllocator_Repair(t *testing.T) {
	e := newEnv(t, "10.96.0.0/24", "30000-30099")
	kept := e.mustCreate(svc("kept", corev1.ServiceTypeNodePort))
	// An orphan key (as a crash of an allocator that wrote keys separately would leave), a
	// Service stored without its keys (data from before the allocator), and a key with a
	// stale owner.
	// The values below are in the static bands (10.96.0.1-16, 30000-30015): "kept" got its
	// values from the dynamic bands, which have room (SVC-IP-02), so they cannot collide.
	orphan := e.a.IPKey(netip.MustParseAddr("10.96.0.7"))
	if _, err := e.a.client.Put(e.ctx, orphan, "default/gone/uid"); err != nil {
		t.Fatal(err)
	}
	legacy := svc("legacy", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30005})
	legacy.Spec.ClusterIP, legacy.Spec.ClusterIPs = "10.96.0.8", []string{"10.96.0.8"}
	legacy.UID = "legacy-uid"
	service.SetDefaults(legacy)
	if _, err := e.store.Create(e.ctx, servicesInfo, e.key("legacy"), legacy, nil, false); err != nil {
		t.Fatal(err)
	}
	stale := e.a.PortKey(int(kept.Spec.Ports[0].NodePort))
	if _, err := e.a.client.Put(e.ctx, stale, "default/kept/old-uid"); err != nil {
		t.Fatal(err)
	}
	res, err := e.a.Repair(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Removed) != fmt.Sprint([]string{orphan}) {
		t.Errorf("removed %v, want [%s]", res.Removed, orphan)
	}
	if len(res.Created) != 2 || len(res.Reowned) != 1 || len(res.Problems) != 0 {
		t.Errorf("created %v reowned %v problems %v, want 2 created (legacy IP and port), 1 reowned", res.Created, res.Reowned, res.Problems)
	}
	keys := e.keys()
	if keys["ipaddresses/10.96.0.8"] != "default/legacy/legacy-uid" || keys["nodeports/30005"] != "default/legacy/legacy-uid" {
		t.Errorf("legacy service's values not recorded: %v", keys)
	}
	// A second pass finds nothing; a value claimed twice is reported, not changed.
	dup := svc("dup", corev1.ServiceTypeClusterIP)
	dup.Spec.ClusterIP, dup.Spec.ClusterIPs, dup.UID = "10.96.0.8", []string{"10.96.0.8"}, "dup-uid"
	service.SetDefaults(dup)
	if _, err := e.store.Create(e.ctx, servicesInfo, e.key("dup"), dup, nil, false); err != nil {
		t.Fatal(err)
	}
	res, err = e.a.Repair(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed)+len(res.Created)+len(res.Reowned) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "ipaddresses/10.96.0.8 is allocated to several services") {
		t.Errorf("second pass: %+v, want one problem about 10.96.0.8", res)
	}
	// Leave a consistent state for the cleanup invariant check.
	if _, err := e.store.Delete(e.ctx, servicesInfo, e.key("dup"), nil, false); err != nil {
		t.Fatal(err)
	}
}

func TestAllocator_TwoAllocatorsRaceOnOneEtcd(t *testing.T) {
	// Two servers' allocators on one etcd, 200 concurrent creates of NodePort services in a
	// small range: every value is held once, losers of a race redo their create.
	c := storagetest.StartEtcd(t)
	envs := []*env{newEnvOn(t, c, "10.96.0.0/24", "30000-30299"), newEnvOn(t, c, "10.96.0.0/24", "30000-30299")}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	out := make(chan *corev1.Service, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := envs[i%2].create(svc(fmt.Sprintf("s%03d", i), corev1.ServiceTypeNodePort), false)
			if err != nil {
				errs <- err
				return
			}
			out <- s
		}()
	}
	wg.Wait()
	close(errs)
	close(out)
	for err := range errs {
		t.Errorf("create: %v", err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for s := range out {
		if prev, dup := ips[s.Spec.ClusterIP]; dup {
			t.Errorf("%s and %s both got %s", prev, s.Name, s.Spec.ClusterIP)
		}
		ips[s.Spec.ClusterIP] = s.Name
		np := s.Spec.Ports[0].NodePort
		if prev, dup := ports[np]; dup {
			t.Errorf("%s and %s both got nodePort %d", prev, s.Name, np)
		}
		ports[np] = s.Name
	}
	if n := len(envs[0].keys()); n != 400 {
		t.Errorf("%d allocation keys, want 400", n)
	}
}

// BenchmarkAllocator_CreateDelete measures one NodePort Service create (cluster IP and node
// port claimed in the Service's transaction) and its delete on real etcd, against the same
// writes without allocation.
func BenchmarkAllocator_CreateDelete(b *testing.B) {
	c := storagetest.StartEtcd(b)
	st := storage.New(storage.Config{Client: c})
	b.Cleanup(st.Close)
	a, err := New(Config{Store: st, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	ctx := b.Context()
	for _, bc := range []struct {
		name     string
		allocate bool
	}{{name: "with allocation", allocate: true}, {name: "without allocation"}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				s := svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort)
				s.UID = types.UID(uuid.NewUUID())
				service.SetDefaults(s)
				var txn *storage.Txn
				if bc.allocate {
					if txn, err = a.BeforeCreate(ctx, s, false); err != nil {
						b.Fatal(err)
					}
				}
				key := st.Key(servicesInfo, "default", s.Name)
				if _, err := st.Create(ctx, servicesInfo, key, s, txn, false); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Delete(ctx, servicesInfo, key, func(cur runtime.Object) (*storage.Txn, error) {
					if !bc.allocate {
						return nil, nil
					}
					return a.BeforeDelete(ctx, cur)
				}, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A view far behind etcd (its watch stopped, as when it lags under load) still lets a create
// succeed within the API server's redo budget: the first lost race loads every allocation key
// into the view. Before, each redo only learnt the one value it lost on, and a create could
// lose 9 times in a row (CI, TestAllocator_DynamicBandFirst under load).
func TestAllocator_StaleViewLearnsOnLostRace(t *testing.T) {
	e := newEnv(t, "10.96.0.0/27", "30000-30019")
	e.a.cancel() // stop the watch: the view knows nothing written from now on
	<-e.a.done
	e.a.cancel = nil
	r := e.a.ranges[corev1.IPv4Protocol]
	var free netip.Addr
	for i := uint64(0); i < r.size; i++ {
		ip := r.at(i)
		if i == 3 { // one address of the static band stays free
			free = ip
			continue
		}
		if _, err := e.a.client.Put(e.ctx, e.a.IPKey(ip), "default/other/uid"); err != nil {
			t.Fatal(err)
		}
	}
	attempts := 0
	var out *corev1.Service
	for ; attempts < 9; attempts++ { // the API server's budget (rest.go: attempt < 8)
		s := svc("late", corev1.ServiceTypeClusterIP)
		s.UID = types.UID(uuid.NewUUID())
		service.SetDefaults(s)
		txn, err := e.a.BeforeCreate(e.ctx, s, false)
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.store.Create(e.ctx, servicesInfo, e.key(s.Name), s, txn, false)
		if errors.Is(err, storage.ErrRace) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = o.(*corev1.Service)
		break
	}
	if out == nil {
		t.Fatalf("create lost %d races in a row against a stale view", attempts)
	}
	if out.Spec.ClusterIP != free.String() || attempts > 1 {
		t.Fatalf("got %s after %d lost races, want the one free address %s after at most one", out.Spec.ClusterIP, attempts, free)
	}
	// Leave allocations matching Services for the cleanup invariant check.
	for i := uint64(0); i < r.size; i++ {
		if ip := r.at(i); ip != free {
			if _, err := e.a.client.Delete(e.ctx, e.a.IPKey(ip)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
