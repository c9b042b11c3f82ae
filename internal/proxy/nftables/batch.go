package nftables

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"kubesvc/internal/proxy"
)

// batch queues the operations of one sync on the netlink connection; Flush sends them as one
// atomic transaction. When log is non-nil, every operation is also recorded as a line of
// text (tests assert on what a sync sends).
type batch struct {
	conn *nftables.Conn
	log  *[]string
	ops  int
}

func (b *batch) record(format string, args ...any) {
	b.ops++
	if b.log != nil {
		*b.log = append(*b.log, fmt.Sprintf(format, args...))
	}
}

func table(f *fam) *nftables.Table { return &nftables.Table{Name: f.table, Family: f.family} }

// recreateTable adds the table, deletes it with everything in it and adds it again: a full
// sync starts from nothing whatever the kernel holds, in the same transaction.
func (b *batch) recreateTable(f *fam) {
	b.conn.AddTable(table(f))
	b.conn.DelTable(table(f))
	b.conn.AddTable(table(f))
	b.record("recreate table %s %s", f.name(), f.table)
}

// deleteTable removes the table if it exists (add first, so a missing table is no error).
func (b *batch) deleteTable(f *fam) {
	b.conn.AddTable(table(f))
	b.conn.DelTable(table(f))
	b.record("delete table %s %s", f.name(), f.table)
}

type baseChain struct {
	name string
	typ  nftables.ChainType
	hook *nftables.ChainHook
	prio int32
}

func (b *batch) addBaseChain(f *fam, c baseChain) {
	b.conn.AddChain(&nftables.Chain{Name: c.name, Table: table(f), Type: c.typ, Hooknum: c.hook, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(c.prio))})
	b.record("add chain %s %s { type %s hook %d priority %d }", f.name(), c.name, c.typ, *c.hook, c.prio)
}

func (b *batch) addChain(f *fam, name string) {
	b.conn.AddChain(&nftables.Chain{Name: name, Table: table(f)})
	b.record("add chain %s %s", f.name(), name)
}

func (b *batch) flushChain(f *fam, name string) {
	b.conn.FlushChain(&nftables.Chain{Name: name, Table: table(f)})
	b.record("flush chain %s %s", f.name(), name)
}

func (b *batch) delChain(f *fam, name string) {
	b.conn.DelChain(&nftables.Chain{Name: name, Table: table(f)})
	b.record("delete chain %s %s", f.name(), name)
}

func (b *batch) addRule(f *fam, chain string, exprs []expr.Any) {
	b.conn.AddRule(&nftables.Rule{Table: table(f), Chain: &nftables.Chain{Name: chain, Table: table(f)}, Exprs: exprs})
	b.record("add rule %s %s (%d expressions)", f.name(), chain, len(exprs))
}

// addNumgenRules spreads new connections uniformly over targets (PX-E-05): rule i of n
// is `numgen random mod (n-i) == 0 goto targets[i]` (probability 1/(n-i) of what reaches it,
// so 1/n overall, as kube-proxy's iptables mode), the last one an unconditional goto.
//
// kube-proxy's nftables mode uses one anonymous `numgen random mod n vmap {...}` per service
// instead; the kernel names each anonymous set by scanning every set of the table
// (nf_tables_set_alloc_name), which makes a full sync quadratic in the number of Services.
func (b *batch) addNumgenRules(f *fam, chain string, targets []string) {
	n := len(targets)
	for i, t := range targets {
		if i == n-1 {
			b.conn.AddRule(&nftables.Rule{Table: table(f), Chain: &nftables.Chain{Name: chain, Table: table(f)}, Exprs: []expr.Any{goTo(t)}})
			break
		}
		b.conn.AddRule(&nftables.Rule{Table: table(f), Chain: &nftables.Chain{Name: chain, Table: table(f)}, Exprs: []expr.Any{
			&expr.Numgen{Register: reg1, Modulus: uint32(n - i), Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
			goTo(t),
		}})
	}
	b.record("add rules %s %s numgen random over %d endpoints { %s }", f.name(), chain, n, strings.Join(targets, ", "))
	b.ops += n - 1
}

// addDNATRandom adds the rule that spreads new connections uniformly over eps (PX-E-05):
// `dnat to numgen random mod n map @dnat-<chain>`, the map holding `i : ip . port`. One rule
// and one map per service port, instead of kube-proxy's chain per endpoint and anonymous
// `numgen … vmap` of gotos. One endpoint is a plain `dnat to ip:port`.
//
// The map is named, not anonymous: a rule refers to a set created in the same transaction by
// name or by transaction ID, and the kernel finds an ID by walking the whole transaction
// (nft_set_lookup_byid), which made a full sync at 10k Services quadratic (30 s of kernel
// time); a name is looked up in the table's sets, which the 16 shard tables keep short. A
// changed service's map is deleted after its chain is flushed and made anew (constant maps
// take no element updates). The map's data is "address . port" (each padded to 4 bytes): the
// lookup writes it to register 1 (address) and 9 or 12 (port, after a 4- or 16-byte
// address), where nat reads them.
func (b *batch) addDNATRandom(f *fam, chain string, eps []proxy.Endpoint) error {
	if len(eps) == 1 {
		b.addRule(f, chain, f.dnat(0, eps[0].IP, eps[0].Port))
		return nil
	}
	dataType := typeAddrPort4
	portReg := uint32(9)
	if f.ipv6 {
		dataType, portReg = typeAddrPort6, 12
	}
	set := &nftables.Set{Table: table(f), Name: dnatMapName(chain), Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: dataType}
	elems := make([]nftables.SetElement, len(eps))
	for i, e := range eps {
		val := make([]byte, 0, f.addrLen+4)
		val = append(val, e.IP.AsSlice()...)
		val = binary.BigEndian.AppendUint16(val, uint16(e.Port))
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: append(val, 0, 0)}
	}
	if err := b.conn.AddSet(set, elems); err != nil {
		return fmt.Errorf("dnat map of chain %s: %w", chain, err)
	}
	b.record("add map %s %s { %d endpoints }", f.name(), set.Name, len(eps))
	b.conn.AddRule(&nftables.Rule{Table: table(f), Chain: &nftables.Chain{Name: chain, Table: table(f)}, Exprs: []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: uint32(len(eps)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: set.Name},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.natFam, RegAddrMin: reg1, RegProtoMin: portReg},
	}})
	b.record("add rule %s %s dnat to numgen random mod %d map @%s", f.name(), chain, len(eps), set.Name)
	return nil
}

// fixedSet describes one of the fixed sets and maps of §6.2.
func fixedSet(f *fam, name string) *nftables.Set {
	s := &nftables.Set{Table: table(f), Name: name}
	switch name {
	case setClusterIPs, setNodePortIPs:
		s.KeyType = f.addrType
	case mapServiceIPs, mapNoEndpointServices, mapFirewallIPs:
		s.KeyType, s.IsMap, s.DataType, s.Concatenation = f.addrProtoPortType(), true, nftables.TypeVerdict, true
	case mapServiceNodePorts, mapNoEndpointNodePorts:
		s.KeyType, s.IsMap, s.DataType, s.Concatenation = typeProtoPort, true, nftables.TypeVerdict, true
	case setHairpin:
		s.KeyType, s.Concatenation = f.addrAddrType(), true
	}
	return s
}

func (b *batch) addSet(f *fam, s *nftables.Set) error {
	if err := b.conn.AddSet(s, nil); err != nil {
		return fmt.Errorf("set %s: %w", s.Name, err)
	}
	b.record("add set %s %s", f.name(), s.Name)
	return nil
}

func (b *batch) addAffinitySet(f *fam, name string, timeout time.Duration) error {
	return b.addSet(f, &nftables.Set{Table: table(f), Name: name, KeyType: f.addrType, HasTimeout: true, Dynamic: true, Timeout: timeout})
}

func (b *batch) delSet(f *fam, name string) {
	b.conn.DelSet(&nftables.Set{Table: table(f), Name: name})
	b.record("delete set %s %s", f.name(), name)
}

func setElements(es []elem) []nftables.SetElement {
	out := make([]nftables.SetElement, len(es))
	for i, e := range es {
		out[i].Key = e.kb
		switch {
		case e.val == "drop":
			out[i].VerdictData = &expr.Verdict{Kind: expr.VerdictDrop}
		case strings.HasPrefix(e.val, "goto "):
			out[i].VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.val[len("goto "):]}
		default:
			out[i].Val = e.vb
		}
	}
	return out
}

// elemChunks splits es so that each NEWSETELEM message stays well under the 64 KiB a
// netlink attribute can hold (the element list is one nested attribute).
func elemChunks(es []elem) [][]elem {
	var out [][]elem
	start, size := 0, 0
	for i, e := range es {
		sz := len(e.kb) + len(e.vb) + len(e.val) + 64
		if size+sz > 48<<10 {
			out = append(out, es[start:i])
			start, size = i, 0
		}
		size += sz
	}
	return append(out, es[start:])
}

func (b *batch) addElems(f *fam, set string, es []elem) error {
	if len(es) == 0 {
		return nil
	}
	for _, chunk := range elemChunks(es) {
		if err := b.conn.SetAddElements(fixedSet(f, set), setElements(chunk)); err != nil {
			return fmt.Errorf("add elements to %s: %w", set, err)
		}
		b.ops++
	}
	if b.log != nil {
		for _, e := range es {
			*b.log = append(*b.log, fmt.Sprintf("add element %s %s { %s%s }", f.name(), set, e.key, valSuffix(e.val)))
		}
	}
	return nil
}

func (b *batch) delElems(f *fam, set string, es []elem) error {
	if len(es) == 0 {
		return nil
	}
	for _, chunk := range elemChunks(es) {
		if err := b.conn.SetDeleteElements(fixedSet(f, set), setElements(chunk)); err != nil {
			return fmt.Errorf("delete elements from %s: %w", set, err)
		}
		b.ops++
	}
	if b.log != nil {
		for _, e := range es {
			*b.log = append(*b.log, fmt.Sprintf("delete element %s %s { %s }", f.name(), set, e.key))
		}
	}
	return nil
}

func valSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " : " + v
}
