// Package nftables is the nftables dataplane of the service proxy (k8s-service-spec.md §6):
// table "kubesvc" in families ip and ip6 with kube-proxy's nftables layout, programmed through
// github.com/google/nftables over netlink — no nft binary, no listing of the kernel table.
// Each Sync sends one atomic netlink batch; the committed state is kept in memory, and an
// incremental Sync rewrites only the chains of changed services and only the map elements that
// differ. See README.md for the design.
//
// Imported by internal/agent; it imports internal/proxy only.
package nftables

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"kubesvc/internal/proxy"
)

// Config configures the dataplane. The zero value serves IPv4 in the caller's network namespace.
type Config struct {
	// IPv4 and IPv6 select the families programmed; neither means IPv4.
	IPv4, IPv6 bool
	// NetNS, when set, is the path of the network namespace to program (default: the
	// caller's).
	NetNS string
}

// Proxier is the nftables Dataplane. Its methods are not safe for concurrent use (the proxy's
// one sync goroutine calls them).
type Proxier struct {
	conn *nftables.Conn
	tr   *transport
	fams []*famState

	mu sync.Mutex // guards opLog
	// opLog, when non-nil, records the operations of the last Sync (tests).
	opLog *[]string
	// lastOps is the number of operations the last Sync sent.
	lastOps int

	committed bool // the kernel matches the state below
	nodeKey   string
}

// famState is the committed state of one table: the main table of a family (shard < 0:
// filter hooks, no-endpoint and firewall maps, masquerading) or one of its NAT shards (the
// services chain, service-ips and service-nodeports, per-service chains).
type famState struct {
	f        *fam
	shard    int
	services map[proxy.ServicePortName]*objects
	elems    map[string]map[string]*elemRef // set → key → element
}

type elemRef struct {
	val  string
	refs int
}

// New opens the netlink connection. It does not touch the kernel's tables.
func New(cfg Config) (*Proxier, error) {
	tr, err := newTransport(cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	conn, err := nftables.New(nftables.WithTestDial(tr.dial))
	if err != nil {
		tr.close()
		return nil, fmt.Errorf("nftables: netlink: %w", err)
	}
	p := &Proxier{conn: conn, tr: tr}
	addFamily := func(f *fam) {
		p.fams = append(p.fams, &famState{f: f, shard: -1})
		for i := 0; i < Shards; i++ {
			sf := *f
			sf.table = shardName(i)
			p.fams = append(p.fams, &famState{f: &sf, shard: i})
		}
	}
	if cfg.IPv4 || !cfg.IPv6 {
		addFamily(famIPv4)
	}
	if cfg.IPv6 {
		addFamily(famIPv6)
	}
	return p, nil
}

// flush sends the queued batch and returns its outcome.
func (p *Proxier) flush() error {
	err := p.conn.Flush()
	return errors.Join(err, p.tr.takeErr())
}

// Name implements proxy.Dataplane.
func (p *Proxier) Name() string { return "nftables" }

// Close implements proxy.Dataplane: it closes the netlink socket; the tables stay.
func (p *Proxier) Close() error {
	p.tr.close()
	return nil
}

// Cleanup implements proxy.Dataplane: it deletes table kubesvc in both families, whatever this
// process knows (a --cleanup run has no committed state).
func (p *Proxier) Cleanup() error {
	b := &batch{conn: p.conn}
	for _, f := range []*fam{famIPv4, famIPv6} {
		b.deleteTable(f)
		for i := 0; i < Shards; i++ {
			sf := *f
			sf.table = shardName(i)
			b.deleteTable(&sf)
		}
	}
	p.committed = false
	if err := p.flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", TableName, err)
	}
	return nil
}

// Supported reports whether the kernel takes an nftables batch with the expressions this
// dataplane needs (numgen, fib, nat, reject, dynset): it creates a probe table and deletes it in
// the same batch, which leaves nothing behind. Used to pick the default --proxy-mode.
func Supported() error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	probe := &nftables.Table{Name: TableName + "-probe", Family: nftables.TableFamilyIPv4}
	conn.AddTable(probe)
	c := conn.AddChain(&nftables.Chain{Name: "probe", Table: probe, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	conn.AddRule(&nftables.Rule{Table: probe, Chain: c, Exprs: append(fibSaddrLocal(),
		&expr.Numgen{Register: reg1, Modulus: 2, Type: 1}, &expr.Masq{FullyRandom: true})})
	conn.DelTable(probe)
	return conn.Flush()
}

// SetOpLog makes Sync record its operations in log (nil stops it). For tests.
func (p *Proxier) SetOpLog(log *[]string) {
	p.mu.Lock()
	p.opLog = log
	p.mu.Unlock()
}

// LastOps is the number of operations the last Sync sent.
func (p *Proxier) LastOps() int { return p.lastOps }

// Sync implements proxy.Dataplane.
func (p *Proxier) Sync(_ context.Context, snap *proxy.Snapshot, changed sets.Set[proxy.ServicePortName], full bool) (err error) {
	nodeKey := fmt.Sprint(snap.NodeIPs, snap.ClusterCIDRs, snap.MasqueradeAll)
	if !p.committed || nodeKey != p.nodeKey {
		full = true
	}
	p.mu.Lock()
	b := &batch{conn: p.conn, log: p.opLog}
	p.mu.Unlock()
	if b.log != nil {
		*b.log = (*b.log)[:0]
	}
	// On any failure the kernel kept its old state (the batch is atomic) but the in-memory
	// state below may be half-updated: the next Sync must be full (NFT-S-05).
	defer func() {
		if err != nil {
			p.committed = false
		}
	}()
	for _, fs := range p.fams {
		if full {
			err = fs.full(b, snap)
		} else {
			err = fs.partial(b, snap, changed)
		}
		if err != nil {
			return fmt.Errorf("nftables: %s: %w", fs.f.name(), err)
		}
	}
	p.lastOps = b.ops
	if err := p.flush(); err != nil {
		return fmt.Errorf("nftables: sync (%d operations, full=%t): %w", b.ops, full, err)
	}
	p.committed, p.nodeKey = true, nodeKey
	return nil
}

func baseChains() []baseChain {
	const dstnat, srcnat = -100, 100
	return []baseChain{
		{chainFilterPrerouting, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, dstnat - 10},
		{chainFilterInput, nftables.ChainTypeFilter, nftables.ChainHookInput, dstnat - 10},
		{chainFilterForward, nftables.ChainTypeFilter, nftables.ChainHookForward, dstnat - 10},
		{chainFilterOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, dstnat - 10},
		{chainFilterOutputPostDNAT, nftables.ChainTypeFilter, nftables.ChainHookOutput, dstnat + 10},
		{chainNATPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, dstnat},
		{chainNATOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, dstnat},
		{chainNATPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, srcnat},
	}
}

// full rebuilds the family's table from nothing (NFT-S-01) in the batch.
func (fs *famState) full(b *batch, snap *proxy.Snapshot) error {
	f := fs.f
	fs.services = map[proxy.ServicePortName]*objects{}
	fs.elems = map[string]map[string]*elemRef{}
	b.recreateTable(f)
	for _, name := range fs.fixedSets() {
		if err := b.addSet(f, fixedSet(f, name)); err != nil {
			return err
		}
	}
	chains := map[string]bool{}
	for _, c := range baseChains() {
		if fs.hasChain(c.name) {
			b.addBaseChain(f, c)
			chains[c.name] = true
		}
	}
	for _, c := range []string{chainServices, chainServiceEndpointsCheck, chainNodePortEndpointsCheck, chainReject,
		chainFirewallCheck, chainClusterIPsCheck, chainMarkForMasquerade, chainMasquerading, chainMasqueradeNonPod} {
		if fs.hasChain(c) {
			b.addChain(f, c)
			chains[c] = true
		}
	}
	for _, r := range fs.fixedRules(snap) {
		if chains[r.chain] {
			b.addRule(f, r.chain, r.exprs)
		}
	}
	var nodeIPs []elem
	for _, ip := range snap.NodeIPs {
		if f.has(ip) && !ip.IsLoopback() {
			nodeIPs = append(nodeIPs, elem{set: setNodePortIPs, key: ip.String(), kb: ip.AsSlice()})
		}
	}
	if err := b.addElems(f, setNodePortIPs, nodeIPs); err != nil {
		return err
	}
	names := make([]proxy.ServicePortName, 0, len(snap.Services))
	for n := range snap.Services {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b proxy.ServicePortName) int { return cmpName(a, b) })
	add := map[string][]elem{}
	for _, n := range names {
		if !fs.owns(n) {
			continue
		}
		o := fs.part(build(f, snap.Services[n], fs.podCIDRs(snap), snap.NodeIPs))
		if o == nil {
			continue
		}
		fs.services[n] = o
		for _, s := range o.sets {
			if err := b.addAffinitySet(f, s.name, s.timeout); err != nil {
				return err
			}
		}
		for _, c := range o.chains {
			b.addChain(f, c.name)
		}
		fs.claim(n, o.elems, nil, add)
	}
	for _, n := range names {
		if o := fs.services[n]; o != nil {
			if err := writeRules(b, f, o.chains); err != nil {
				return err
			}
		}
	}
	return addAll(b, f, add)
}

// partial applies the changed services only (NFT-S-02/03): their chains are flushed and
// rewritten, removed chains and sets deleted, and only differing elements sent.
func (fs *famState) partial(b *batch, snap *proxy.Snapshot, changed sets.Set[proxy.ServicePortName]) error {
	f := fs.f
	ordered := make([]proxy.ServicePortName, 0, changed.Len())
	for n := range changed {
		if fs.owns(n) {
			ordered = append(ordered, n)
		}
	}
	slices.SortFunc(ordered, cmpName)
	type change struct {
		name     proxy.ServicePortName
		old, new *objects
	}
	var chs []change
	for _, n := range ordered {
		var o *objects
		if st, ok := snap.Services[n]; ok {
			o = fs.part(build(f, st, fs.podCIDRs(snap), snap.NodeIPs))
		}
		if o == nil && fs.services[n] == nil {
			continue
		}
		chs = append(chs, change{n, fs.services[n], o})
	}
	// 1. Flush the chains the changed services had: nothing jumps to a chain about to go.
	for _, c := range chs {
		if c.old != nil {
			for _, ch := range c.old.chains {
				b.flushChain(f, ch.name)
			}
		}
	}
	// 2. Elements that go or change value.
	del := map[string][]elem{}
	for _, c := range chs {
		if c.old != nil {
			fs.release(c.old.elems, keepSet(c.new), del)
		}
	}
	for _, set := range sortedKeys(del) {
		if err := b.delElems(f, set, del[set]); err != nil {
			return err
		}
	}
	// 3. Chains and sets that go; 4. new sets and chains; rules.
	for _, c := range chs {
		newChains, newSets := map[string]bool{}, map[string]setSpec{}
		if c.new != nil {
			for _, ch := range c.new.chains {
				newChains[ch.name] = true
			}
			for _, s := range c.new.sets {
				newSets[s.name] = s
			}
		}
		oldChains, oldSets := map[string]bool{}, map[string]setSpec{}
		if c.old != nil {
			for _, ch := range c.old.chains {
				oldChains[ch.name] = true
				if !newChains[ch.name] {
					b.delChain(f, ch.name)
				}
				if ch.hasMap { // unbound by the flush; writeRules makes a new one if needed
					b.delSet(f, dnatMapName(ch.name))
				}
			}
			for _, s := range c.old.sets {
				oldSets[s.name] = s
				if ns, ok := newSets[s.name]; !ok || ns.timeout != s.timeout {
					b.delSet(f, s.name)
				}
			}
		}
		if c.new == nil {
			delete(fs.services, c.name)
			continue
		}
		for _, s := range c.new.sets {
			// An unchanged affinity set keeps its entries: clients stay on their endpoint.
			if os, ok := oldSets[s.name]; !ok || os.timeout != s.timeout {
				if err := b.addAffinitySet(f, s.name, s.timeout); err != nil {
					return err
				}
			}
		}
		for _, ch := range c.new.chains {
			if !oldChains[ch.name] {
				b.addChain(f, ch.name)
			}
		}
		fs.services[c.name] = c.new
	}
	for _, c := range chs {
		if c.new != nil {
			if err := writeRules(b, f, c.new.chains); err != nil {
				return err
			}
		}
	}
	// 5. Elements that are new or changed value.
	add := map[string][]elem{}
	for _, c := range chs {
		if c.new != nil {
			fs.claim(c.name, c.new.elems, keepSet(c.old), add)
		}
	}
	return addAll(b, f, add)
}

// keepSet is the elements (set, key, value) a service keeps, to send no delete+add for them.
func keepSet(o *objects) map[[3]string]bool {
	m := map[[3]string]bool{}
	if o != nil {
		for _, e := range o.elems {
			m[[3]string{e.set, e.key, e.val}] = true
		}
	}
	return m
}

// release drops one reference to each element of a service's old objects; elements whose last
// reference goes and that the new version does not keep are queued for deletion.
func (fs *famState) release(es []elem, keep map[[3]string]bool, del map[string][]elem) {
	for _, e := range es {
		if keep[[3]string{e.set, e.key, e.val}] {
			continue
		}
		m := fs.elems[e.set]
		r := m[e.key]
		if r == nil {
			continue
		}
		r.refs--
		if r.refs <= 0 {
			delete(m, e.key)
			del[e.set] = append(del[e.set], e)
		}
	}
}

// claim takes a reference to each element of a service's objects; elements not yet in the
// kernel are queued for addition. Elements the previous version had (kept) already hold their
// reference (see release). A key another service owns with another value keeps that value
// (e.g. two Services claiming one externalIP:port): the first one wins.
func (fs *famState) claim(name proxy.ServicePortName, es []elem, kept map[[3]string]bool, add map[string][]elem) {
	for _, e := range es {
		if kept[[3]string{e.set, e.key, e.val}] {
			continue
		}
		m := fs.elems[e.set]
		if m == nil {
			m = map[string]*elemRef{}
			fs.elems[e.set] = m
		}
		if r := m[e.key]; r != nil {
			r.refs++
			if r.val != e.val {
				klog.InfoS("nftables: element claimed by two services; keeping the first", "set", e.set, "key", e.key, "service", name)
			}
			continue
		}
		m[e.key] = &elemRef{val: e.val, refs: 1}
		add[e.set] = append(add[e.set], e)
	}
}

func addAll(b *batch, f *fam, add map[string][]elem) error {
	for _, set := range sortedKeys(add) {
		if err := b.addElems(f, set, add[set]); err != nil {
			return err
		}
	}
	return nil
}

// writeRules queues the chains' rules, then drops them: the committed state keeps names only
// (at 10k Services the expressions would be millions of small objects for the GC to scan).
func writeRules(b *batch, f *fam, chains []chainSpec) error {
	for i := range chains {
		c := &chains[i]
		for _, r := range c.rules {
			b.addRule(f, c.name, r)
		}
		if len(c.numgen) > 0 {
			b.addNumgenRules(f, c.name, c.numgen)
		}
		if len(c.dnat) > 0 {
			if err := b.addDNATRandom(f, c.name, c.dnat); err != nil {
				return err
			}
		}
		c.rules, c.numgen, c.dnat = nil, nil, nil
	}
	return nil
}

func (fs *famState) podCIDRs(snap *proxy.Snapshot) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range snap.ClusterCIDRs {
		if fs.f.has(p.Addr()) {
			out = append(out, p)
		}
	}
	return out
}

type rule struct {
	chain string
	exprs []expr.Any
}

// fixedRules are the rules of the base and fixed chains (NFT-03, §6.2).
func (fs *famState) fixedRules(snap *proxy.Snapshot) []rule {
	f := fs.f
	ct := func(target string) []expr.Any { return append(ctNew(), jump(target)) }
	rs := []rule{
		{chainFilterInput, ct(chainNodePortEndpointsCheck)},
		{chainFilterInput, ct(chainServiceEndpointsCheck)},
		{chainFilterForward, ct(chainServiceEndpointsCheck)},
		{chainFilterForward, ct(chainClusterIPsCheck)},
		{chainFilterOutput, ct(chainServiceEndpointsCheck)},
		{chainFilterOutput, ct(chainFirewallCheck)},
		{chainFilterPrerouting, ct(chainFirewallCheck)},
		{chainFilterOutputPostDNAT, ct(chainClusterIPsCheck)},
		{chainNATPrerouting, []expr.Any{jump(chainServices)}},
		{chainNATOutput, []expr.Any{jump(chainServices)}},
		{chainNATPostrouting, append(f.hairpinMatch(), jump(chainMarkForMasquerade))},
		{chainNATPostrouting, []expr.Any{jump(chainMasquerading)}},
		{chainServices, append(f.daddrProtoPort(), vmap(mapServiceIPs))},
		{chainServices, append(append([]expr.Any{f.loadDaddr(reg1), lookup(setNodePortIPs, false)}, protoPort()...), vmap(mapServiceNodePorts))},
		{chainServiceEndpointsCheck, append(f.daddrProtoPort(), vmap(mapNoEndpointServices))},
		{chainNodePortEndpointsCheck, append(append([]expr.Any{f.loadDaddr(reg1), lookup(setNodePortIPs, false)}, protoPort()...), vmap(mapNoEndpointNodePorts))},
		{chainReject, []expr.Any{f.reject()}},
		{chainFirewallCheck, append(f.daddrProtoPort(), vmap(mapFirewallIPs))},
		{chainClusterIPsCheck, []expr.Any{f.loadDaddr(reg1), lookup(setClusterIPs, false), f.reject()}},
		{chainMarkForMasquerade, markForMasquerade()},
	}
	for _, r := range masquerading() {
		rs = append(rs, rule{chainMasquerading, r})
	}
	// The local-traffic detector (PX-M-03b/c): traffic to a cluster IP from outside the pod
	// network is masqueraded; with --masquerade-all, all of it.
	if !snap.MasqueradeAll {
		for _, p := range fs.podCIDRs(snap) {
			rs = append(rs, rule{chainMasqueradeNonPod, append(append([]expr.Any{f.loadSaddr(reg1)}, prefixMatch(reg1, p, expr.CmpOpEq)...), verdict(expr.VerdictReturn))})
		}
	}
	if snap.MasqueradeAll || len(fs.podCIDRs(snap)) > 0 {
		rs = append(rs, rule{chainMasqueradeNonPod, []expr.Any{jump(chainMarkForMasquerade)}})
	}
	return rs
}

func cmpName(a, b proxy.ServicePortName) int {
	if a.Namespace != b.Namespace {
		return cmpStr(a.Namespace, b.Namespace)
	}
	if a.Name != b.Name {
		return cmpStr(a.Name, b.Name)
	}
	if a.Port != b.Port {
		return cmpStr(a.Port, b.Port)
	}
	return cmpStr(string(a.Protocol), string(b.Protocol))
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Where objects live: the main table keeps the filter side and masquerading, each shard the
// NAT side of the Services it owns.
var mainObjects = map[string]bool{
	setClusterIPs: true, setNodePortIPs: true, mapNoEndpointServices: true, mapNoEndpointNodePorts: true,
	mapFirewallIPs: true, setHairpin: true,
	chainFilterPrerouting: true, chainFilterInput: true, chainFilterForward: true, chainFilterOutput: true,
	chainFilterOutputPostDNAT: true, chainNATPostrouting: true, chainServiceEndpointsCheck: true,
	chainNodePortEndpointsCheck: true, chainReject: true, chainFirewallCheck: true, chainClusterIPsCheck: true,
	chainMarkForMasquerade: true, chainMasquerading: true,
}

var shardObjects = map[string]bool{
	setNodePortIPs: true, mapServiceIPs: true, mapServiceNodePorts: true,
	chainNATPrerouting: true, chainNATOutput: true, chainServices: true, chainMarkForMasquerade: true,
	chainMasqueradeNonPod: true,
}

func (fs *famState) hasChain(name string) bool {
	if fs.shard < 0 {
		return mainObjects[name]
	}
	return shardObjects[name]
}

func (fs *famState) fixedSets() []string {
	var out []string
	for _, name := range []string{setClusterIPs, setNodePortIPs, mapServiceIPs, mapServiceNodePorts, mapNoEndpointServices,
		mapNoEndpointNodePorts, mapFirewallIPs, setHairpin} {
		if fs.hasChain(name) {
			out = append(out, name)
		}
	}
	return out
}

// owns reports whether this table holds objects of the service port n.
func (fs *famState) owns(n proxy.ServicePortName) bool {
	if fs.shard < 0 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(serviceBase(n)))
	return int(h.Sum32()%Shards) == fs.shard
}

// part keeps the objects of o that live in this table; nil when none.
func (fs *famState) part(o *objects) *objects {
	if o == nil {
		return nil
	}
	out := &objects{}
	for _, e := range o.elems {
		if fs.hasChain(e.set) {
			out.elems = append(out.elems, e)
		}
	}
	for _, c := range o.chains {
		if strings.HasPrefix(c.name, "firewall-") == (fs.shard < 0) {
			out.chains = append(out.chains, c)
		}
	}
	if fs.shard >= 0 {
		out.sets = o.sets
	}
	if len(out.elems) == 0 && len(out.chains) == 0 && len(out.sets) == 0 {
		return nil
	}
	return out
}
