package nftables

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// fam is one address family's table: what differs between ip and ip6.
type fam struct {
	table    string // the table's name: TableName, or a shard's (shardName)
	family   nftables.TableFamily
	ipv6     bool
	addrLen  uint32
	addrType nftables.SetDatatype
	saddrOff uint32
	daddrOff uint32
	loopback netip.Prefix
	natFam   uint32
	rejCode  uint8
}

var (
	famIPv4 = &fam{table: TableName, family: nftables.TableFamilyIPv4, addrLen: 4, addrType: nftables.TypeIPAddr, saddrOff: 12, daddrOff: 16,
		loopback: netip.MustParsePrefix("127.0.0.0/8"), natFam: unix.NFPROTO_IPV4, rejCode: 3 /* ICMP port unreachable */}
	famIPv6 = &fam{table: TableName, family: nftables.TableFamilyIPv6, ipv6: true, addrLen: 16, addrType: nftables.TypeIP6Addr, saddrOff: 8, daddrOff: 24,
		loopback: netip.MustParsePrefix("::1/128"), natFam: unix.NFPROTO_IPV6, rejCode: 4 /* ICMPv6 port unreachable */}
)

func (f *fam) has(a netip.Addr) bool { return a.Is6() == f.ipv6 }

func (f *fam) name() string {
	if f.ipv6 {
		return "ip6"
	}
	return "ip"
}

// Registers: NFT_REG_1 (16 bytes) overlaps the 32-bit registers 8..11, so a concatenation
// "addr . proto . port" loads the address into reg 1 (8, or 8..11 for IPv6) and the next
// fields into the following 32-bit registers, as nft does.
const reg1, reg2 = 1, 2

func (f *fam) concatRegs() (proto, port uint32) {
	if f.ipv6 {
		return 12, 13
	}
	return 9, 10
}

func (f *fam) loadDaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen}
}

func (f *fam) loadSaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen}
}

// daddrProtoPort loads "daddr . meta l4proto . th dport" for a lookup in reg 1.
func (f *fam) daddrProtoPort() []expr.Any {
	rp, rd := f.concatRegs()
	return []expr.Any{
		f.loadDaddr(reg1),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: rp},
		&expr.Payload{DestRegister: rd, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

// protoPort loads "meta l4proto . th dport" into reg 1 (8) and 9.
func protoPort() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 8},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func vmap(set string) expr.Any {
	return &expr.Lookup{SourceRegister: reg1, SetName: set, IsDestRegSet: true, DestRegister: 0}
}

func lookup(set string, invert bool) expr.Any {
	return &expr.Lookup{SourceRegister: reg1, SetName: set, Invert: invert}
}

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
func goTo(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain} }
func verdict(k expr.VerdictKind) expr.Any {
	return &expr.Verdict{Kind: k}
}

// ctNew is "ct state new".
func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

// prefixMatch compares the address in reg with p (eq or neq).
func prefixMatch(reg uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	addr := p.Masked().Addr().AsSlice()
	var out []expr.Any
	if p.Bits() != p.Addr().BitLen() {
		mask := make([]byte, len(addr))
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: uint32(len(addr)), Mask: mask, Xor: make([]byte, len(addr))})
	}
	return append(out, &expr.Cmp{Op: op, Register: reg, Data: addr})
}

// fibSaddrLocal is "fib saddr type local".
func fibSaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// markForMasquerade is "mark set mark or 0x4000" (PX-M-01).
func markForMasquerade() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^masqueradeBit), Xor: binaryutil.NativeEndian.PutUint32(masqueradeBit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// masquerading is PX-M-02's three rules.
func masquerading() [][]expr.Any {
	return [][]expr.Any{
		{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(masqueradeBit), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
			verdict(expr.VerdictReturn),
		},
		{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(0xffffffff), Xor: binaryutil.NativeEndian.PutUint32(masqueradeBit)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
		},
		{&expr.Masq{FullyRandom: true}},
	}
}

func (f *fam) reject() expr.Any {
	return &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: f.rejCode}
}

// dnat is "dnat to ip:port". kube-proxy writes `meta l4proto <proto> dnat to ip:port`; the
// protocol match is for nft's parser, not the kernel, and every chain that DNATs is reached
// only through a map keyed by protocol. Fewer expressions matter: the kernel looks each
// expression type up by name in a list (__nft_expr_type_get), the largest kernel cost of a
// full sync. For IPv4, address and port go in one immediate (registers 8 and 9).
func (f *fam) dnat(_ byte, ip netip.Addr, port int32) []expr.Any {
	if !f.ipv6 {
		data := append(ip.AsSlice(), 0, 0, 0, 0)
		binary.BigEndian.PutUint16(data[4:], uint16(port))
		return []expr.Any{
			&expr.Immediate{Register: reg1, Data: data},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.natFam, RegAddrMin: reg1, RegProtoMin: 9},
		}
	}
	return []expr.Any{
		&expr.Immediate{Register: reg1, Data: ip.AsSlice()},
		&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.natFam, RegAddrMin: reg1, RegProtoMin: reg2},
	}
}

// Element keys: every field of a concatenation is padded to 4 bytes.
func (f *fam) keyAddrProtoPort(ip netip.Addr, proto byte, port int32) []byte {
	k := make([]byte, 0, f.addrLen+8)
	k = append(k, ip.AsSlice()...)
	k = append(k, proto, 0, 0, 0)
	k = binary.BigEndian.AppendUint16(k, uint16(port))
	return append(k, 0, 0)
}

func keyProtoPort(proto byte, port int32) []byte {
	k := []byte{proto, 0, 0, 0}
	k = binary.BigEndian.AppendUint16(k, uint16(port))
	return append(k, 0, 0)
}

var (
	typeAddrProtoPort4 = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeAddrProtoPort6 = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	typeProtoPort      = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	typeAddrPort4      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	typeAddrPort6      = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)
)

func (f *fam) addrProtoPortType() nftables.SetDatatype {
	if f.ipv6 {
		return typeAddrProtoPort6
	}
	return typeAddrProtoPort4
}

// hairpinMatch is `ip saddr . ip daddr @hairpin-endpoints`.
func (f *fam) hairpinMatch() []expr.Any {
	second := uint32(9)
	if f.ipv6 {
		second = reg2
	}
	return []expr.Any{f.loadSaddr(reg1), f.loadDaddr(second), lookup(setHairpin, false)}
}

func (f *fam) addrAddrType() nftables.SetDatatype {
	return nftables.MustConcatSetType(f.addrType, f.addrType)
}
