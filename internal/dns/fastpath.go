package dns

import (
	"encoding/binary"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// fastReader is the read loop of the UDP server (miekg's DecorateReader hook): a plain
// query whose reply the zone cache keeps is answered right there, from the raw packet,
// without a goroutine, an unpacked message or a packed reply; everything else goes on to
// the miekg server unchanged. Only the read loop's goroutine uses it.
type fastReader struct {
	mdns.Reader // ReadTCP
	s           *Server
	v6          bool   // family of the listen address, for the metrics
	buf         []byte // the packet being read (miekg's UDP read size)
	name        []byte // the question name being parsed
	reply       []byte
}

func (s *Server) decorateUDP(inner mdns.Reader) mdns.Reader {
	return &fastReader{Reader: inner, s: s, buf: make([]byte, mdns.MinMsgSize), name: make([]byte, 0, 256)}
}

// ReadUDP reads packets until one is not answered from the zone cache and returns a copy of
// it, as miekg's own reader would (same read size, same read deadline).
func (r *fastReader) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *mdns.SessionUDP, error) {
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		r.v6 = a.IP.To4() == nil
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		n, sess, err := mdns.ReadFromSessionUDP(conn, r.buf)
		if err != nil {
			return nil, nil, err
		}
		if r.answer(conn, r.buf[:n], sess) {
			continue
		}
		m := make([]byte, n)
		copy(m, r.buf[:n])
		return m, sess, nil
	}
}

// answer sends the kept reply to pkt, if there is one.
func (r *fastReader) answer(conn *net.UDPConn, pkt []byte, sess *mdns.SessionUDP) bool {
	start := time.Now()
	var k zoneKey
	var ok bool
	r.name, k, ok = rawZoneKey(pkt, r.name[:0])
	if !ok {
		return false
	}
	e, ok := r.s.zc.get(k, r.s.st.generation())
	if !ok {
		return false
	}
	r.reply = append(r.reply[:0], e.wire...)
	r.reply[0], r.reply[1] = pkt[0], pkt[1]
	if _, err := mdns.WriteToSessionUDP(conn, r.reply, sess); err != nil {
		return true // as a failed write of the miekg server: nothing else to do
	}
	r.s.fastHits.Add(1)
	r.s.metrics.cacheHit(e.kind())
	r.s.metrics.record(k.qtype, k.flags&zoneDO != 0, len(pkt), e.rcode, "udp", r.v6, "cache", len(e.wire), start)
	return true
}

// rawZoneKey returns the zone cache key of a raw query, the one zoneKeyOf gives for the
// unpacked message, for the plain queries clients send: not a response, opcode QUERY, one
// IN question whose name has only letters, digits, '-' and '_' (no compression), no answer
// or authority records, and at most an EDNS0 version 0 OPT record without options. Other
// packets return ok false (and take the miekg path). name is scratch space.
func rawZoneKey(pkt, name []byte) ([]byte, zoneKey, bool) {
	const hdr = 12
	if len(pkt) < hdr+1+4 {
		return name, zoneKey{}, false
	}
	f1, f2 := pkt[2], pkt[3]
	if f1&0x80 != 0 || (f1>>3)&0x0f != mdns.OpcodeQuery {
		return name, zoneKey{}, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]), binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return name, zoneKey{}, false
	}
	off := hdr
	for {
		if off >= len(pkt) {
			return name, zoneKey{}, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || off-hdr+l > 254 {
			return name, zoneKey{}, false
		}
		for _, c := range pkt[off : off+l] {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return name, zoneKey{}, false
			}
		}
		name = append(append(name, pkt[off:off+l]...), '.')
		off += l
	}
	if len(name) == 0 || off+4 > len(pkt) || binary.BigEndian.Uint16(pkt[off+2:]) != mdns.ClassINET {
		return name, zoneKey{}, false
	}
	k := zoneKey{qtype: binary.BigEndian.Uint16(pkt[off:])}
	off += 4
	if f1&0x01 != 0 {
		k.flags |= zoneRD
	}
	if f2&0x10 != 0 {
		k.flags |= zoneCD
	}
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = extended rcode, version, DO+Z,
		// no RDATA.
		if off+11 != len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != mdns.TypeOPT ||
			pkt[off+6] != 0 || binary.BigEndian.Uint16(pkt[off+9:]) != 0 {
			return name, zoneKey{}, false
		}
		k.flags |= zoneEDNS
		k.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		if pkt[off+7]&0x80 != 0 {
			k.flags |= zoneDO
		}
		off += 11
	}
	if off != len(pkt) {
		return name, zoneKey{}, false
	}
	k.name = string(name)
	return name, k, true
}
