package nftables

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
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

func table(f *fam) *nftables.Table { return &nftables.Table{Name: TableName, Family: f.family} }

// recreateTable adds the table, deletes it with everything in it and adds it again: a full
// sync starts from nothing whatever the kernel holds, in the same transaction.
func (b *batch) recreateTable(f *fam) {
	b.conn.AddTable(table(f))
	b.conn.DelTable(table(f))
	b.conn.AddTable(table(f))
	b.record("recreate table %s %s", f.name(), TableName)
}

// deleteTable removes the table if it exists (add first, so a missing table is no error).
func (b *batch) deleteTable(f *fam) {
	b.conn.AddTable(table(f))
	b.conn.DelTable(table(f))
	b.record("delete table %s %s", f.name(), TableName)
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

// addNumgenRule adds `numgen random mod N vmap { i : goto targets[i] }` with its anonymous map.
func (b *batch) addNumgenRule(f *fam, chain string, targets []string) error {
	anon := &nftables.Set{Table: table(f), Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict, KeyByteOrder: binaryutil.NativeEndian}
	elems := make([]nftables.SetElement, len(targets))
	for i, t := range targets {
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: t}}
	}
	if err := b.conn.AddSet(anon, elems); err != nil {
		return fmt.Errorf("numgen map of %s: %w", chain, err)
	}
	b.conn.AddRule(&nftables.Rule{Table: table(f), Chain: &nftables.Chain{Name: chain, Table: table(f)}, Exprs: []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: uint32(len(targets)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: reg1, SetName: anon.Name, SetID: anon.ID, IsDestRegSet: true, DestRegister: 0},
	}})
	b.record("add rule %s %s numgen random mod %d vmap { %s }", f.name(), chain, len(targets), strings.Join(targets, ", "))
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
		}
	}
	return out
}

func (b *batch) addElems(f *fam, set string, es []elem) error {
	if len(es) == 0 {
		return nil
	}
	if err := b.conn.SetAddElements(fixedSet(f, set), setElements(es)); err != nil {
		return fmt.Errorf("add elements to %s: %w", set, err)
	}
	for _, e := range es {
		b.record("add element %s %s { %s%s }", f.name(), set, e.key, valSuffix(e.val))
	}
	return nil
}

func (b *batch) delElems(f *fam, set string, es []elem) error {
	if len(es) == 0 {
		return nil
	}
	if err := b.conn.SetDeleteElements(fixedSet(f, set), setElements(es)); err != nil {
		return fmt.Errorf("delete elements from %s: %w", set, err)
	}
	for _, e := range es {
		b.record("delete element %s %s { %s }", f.name(), set, e.key)
	}
	return nil
}

func valSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " : " + v
}
