package svcdiff

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// masker hides what legitimately differs between two servers given the same requests: uids,
// resourceVersions, timestamps, generated name suffixes, and allocated IPs and ports. An
// allocated value is replaced by a symbol numbered in order of first appearance (<ip#1>,
// <port#2>), so re-applying a manifest that keeps its clusterIP shows the same symbol and
// one that re-allocates shows a new one. Only values inside the usable range are masked:
// anything else stays as is, and values the case itself asked for are never masked.
type masker struct {
	literal map[string]bool
	cidrs   []netip.Prefix
	portLo  int
	portHi  int

	ips   map[string]string
	ports map[string]string
	// outOfRange records allocated values outside their range (reported as a mismatch).
	outOfRange []string
}

func newMasker(literal map[string]bool, cidrs []netip.Prefix, portLo, portHi int) *masker {
	return &masker{literal: literal, cidrs: cidrs, portLo: portLo, portHi: portHi, ips: map[string]string{}, ports: map[string]string{}}
}

// usableIP reports whether ip is an address a service may get: inside a service CIDR,
// neither its network address nor (IPv4) its broadcast address.
func (m *masker) usableIP(s string) bool {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	for _, p := range m.cidrs {
		if !p.Contains(ip) {
			continue
		}
		if ip == p.Masked().Addr() {
			return false
		}
		if ip.Is4() {
			b := ip.As4()
			host := 32 - p.Bits()
			all := uint32(1)<<host - 1
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			if v&all == all {
				return false
			}
		}
		return true
	}
	return false
}

func (m *masker) ip(s string) string {
	if s == "" || s == "None" || m.literal[s] {
		return s
	}
	if sym, ok := m.ips[s]; ok {
		return sym
	}
	if !m.usableIP(s) {
		m.outOfRange = append(m.outOfRange, "ip "+s)
		return s
	}
	sym := fmt.Sprintf("<ip#%d>", len(m.ips)+1)
	m.ips[s] = sym
	return sym
}

func (m *masker) port(v any) any {
	f, ok := v.(float64)
	if !ok || f == 0 {
		return v
	}
	s := strconv.FormatInt(int64(f), 10)
	if m.literal[s] {
		return v
	}
	if sym, ok := m.ports[s]; ok {
		return sym
	}
	if int(f) < m.portLo || int(f) > m.portHi {
		m.outOfRange = append(m.outOfRange, "port "+s)
		return v
	}
	sym := fmt.Sprintf("<port#%d>", len(m.ports)+1)
	m.ports[s] = sym
	return sym
}

// object masks one decoded API object (or list) in place and returns it.
func (m *masker) object(v any) any {
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if items, ok := obj["items"].([]any); ok {
		for _, it := range items {
			m.object(it)
		}
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		m.metadata(md)
	}
	if obj["kind"] == "Service" {
		m.serviceSpec(obj["spec"])
	}
	return obj
}

func (m *masker) metadata(md map[string]any) {
	delete(md, "managedFields")
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"} {
		if v, ok := md[k].(string); ok && v != "" {
			md[k] = "<" + k + ">"
		}
	}
	if gn, ok := md["generateName"].(string); ok && gn != "" {
		if n, ok := md["name"].(string); ok && strings.HasPrefix(n, gn) && !m.literal[n] {
			md["name"] = gn + "<random>"
		}
	}
	if refs, ok := md["ownerReferences"].([]any); ok {
		for _, r := range refs {
			if r, ok := r.(map[string]any); ok {
				if _, ok := r["uid"]; ok {
					r["uid"] = "<uid>"
				}
			}
		}
	}
}

func (m *masker) serviceSpec(v any) {
	spec, ok := v.(map[string]any)
	if !ok {
		return
	}
	if s, ok := spec["clusterIP"].(string); ok {
		spec["clusterIP"] = m.ip(s)
	}
	if ips, ok := spec["clusterIPs"].([]any); ok {
		for i, s := range ips {
			if s, ok := s.(string); ok {
				ips[i] = m.ip(s)
			}
		}
	}
	if ports, ok := spec["ports"].([]any); ok {
		for _, p := range ports {
			if p, ok := p.(map[string]any); ok {
				if np, ok := p["nodePort"]; ok {
					p["nodePort"] = m.port(np)
				}
			}
		}
	}
	if hc, ok := spec["healthCheckNodePort"]; ok {
		spec["healthCheckNodePort"] = m.port(hc)
	}
}

var (
	// ipRE finds IP-address-like tokens (IPv4 dotted quads and IPv6 hex groups).
	ipRE     = regexp.MustCompile(`[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*[0-9A-Fa-f]`)
	numberRE = regexp.MustCompile(`\b\d{1,5}\b`)
)

// text replaces the allocated values already seen in a free-text error message, whole
// tokens only.
func (m *masker) text(s string) string {
	s = ipRE.ReplaceAllStringFunc(s, func(tok string) string {
		if sym, ok := m.ips[tok]; ok {
			return sym
		}
		return tok
	})
	return numberRE.ReplaceAllStringFunc(s, func(n string) string {
		if sym, ok := m.ports[n]; ok {
			return sym
		}
		return n
	})
}
