package dns

import (
	"errors"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"

	mdns "github.com/miekg/dns"
)

// Pod record modes (DNS-07), CoreDNS's `pods` option.
const (
	// PodsDisabled answers NXDOMAIN for every name under pod.<zone>.
	PodsDisabled = "disabled"
	// PodsInsecure answers any well-formed <ip-with-dashes>.<ns>.pod.<zone> in an existing
	// namespace without checking that such a pod exists (kubeadm's CoreDNS setting).
	PodsInsecure = "insecure"
	// PodsVerified answers only if a pod with that IP exists in that namespace.
	PodsVerified = "verified"
)

// SchemaVersion is the Kubernetes DNS schema version served at dns-version.<zone> (DNS-01).
const SchemaVersion = "1.1.0"

// schemaTTL is the TTL of the dns-version TXT record (CoreDNS).
const schemaTTL = 28800

// maxCNAMEChain bounds CNAME chains followed inside the zone (CoreDNS).
const maxCNAMEChain = 10

var (
	// errNoItems: the name does not exist (NXDOMAIN, DNS-C-02).
	errNoItems = errors.New("dns: no such name")
	// errInvalid: the name cannot exist in the schema (NXDOMAIN, DNS-C-02).
	errInvalid = errors.New("dns: invalid query name")
)

func isNameError(err error) bool { return errors.Is(err, errNoItems) || errors.Is(err, errInvalid) }

// entry is one thing a name stands for, CoreDNS's msg.Service: host is an IP address (an
// A/AAAA answer), a domain name (a CNAME), or empty with text set (TXT). target is the owner
// name of the address: the SRV/NS target and the name of the additional A/AAAA record.
type entry struct {
	host   string
	text   string
	port   int32
	ttl    uint32
	target string
}

// hostType classifies e as CoreDNS's msg.Service.HostType does: an IP is A (IPv4 and
// IPv4-mapped) or AAAA, text is TXT, anything else is a CNAME target.
func (e *entry) hostType() (uint16, net.IP) {
	ip := net.ParseIP(e.host)
	switch {
	case ip == nil && e.text == "":
		return mdns.TypeCNAME, nil
	case ip == nil:
		return mdns.TypeTXT, nil
	case ip.To4() != nil:
		return mdns.TypeA, ip.To4()
	default:
		return mdns.TypeAAAA, ip.To16()
	}
}

// query is a parsed name below the cluster zone: [_port._proto. | endpoint.]service.namespace.(svc|pod).
type query struct {
	port, protocol, endpoint, service, namespace string
	podOrSvc                                     string // "svc", "pod" or "" (apex-like names)
}

// parse splits name (lower case, inside zone) into the schema's parts. Names the schema
// cannot hold return errInvalid; apex-like names (zone, svc.zone, pod.zone) return an empty
// query.
func parse(name, zone string) (query, error) {
	var q query
	base := strings.TrimSuffix(name[:len(name)-len(zone)], ".")
	if base == "" || base == "svc" || base == "pod" {
		return q, nil
	}
	segs := mdns.SplitDomainName(base)
	last := len(segs) - 1
	if last < 0 {
		return q, nil
	}
	q.podOrSvc = segs[last]
	if q.podOrSvc != "pod" && q.podOrSvc != "svc" {
		return q, errInvalid
	}
	if last--; last < 0 {
		return q, nil
	}
	q.namespace = segs[last]
	if last--; last < 0 {
		return q, nil
	}
	q.service = segs[last]
	if last--; last < 0 {
		return q, nil
	}
	switch last {
	case 0:
		q.endpoint = segs[0]
	case 1:
		// _port._proto; CoreDNS strips one leading underscore and accepts names without it.
		q.protocol = strings.TrimPrefix(segs[1], "_")
		q.port = strings.TrimPrefix(segs[0], "_")
	default:
		return q, errInvalid
	}
	return q, nil
}

// isReverse reports whether name is below in-addr.arpa. or ip6.arpa.
func isReverse(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}

// reverseAddr returns the IP address a reverse name stands for, or "" if it stands for none
// (partial or malformed names).
func reverseAddr(name string) string {
	var labels []string
	v6 := false
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		labels = strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
	case strings.HasSuffix(name, ".ip6.arpa."):
		labels = strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		v6 = true
	default:
		return ""
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	if !v6 {
		ip := net.ParseIP(strings.Join(labels, ".")).To4()
		if ip == nil {
			return ""
		}
		return ip.String()
	}
	groups := make([]string, 0, len(labels)/4)
	for i := 0; i+4 <= len(labels); i += 4 {
		groups = append(groups, strings.Join(labels[i:i+4], ""))
	}
	ip := net.ParseIP(strings.Join(groups, ":")).To16()
	if ip == nil {
		return ""
	}
	return ip.String()
}

// endpointHostname is an endpoint's DNS label (DNS-04): its hostname, else its IP with
// dashes (an IPv6 name ending in "-" gets a "0").
func endpointHostname(a address) string {
	if a.hostname != "" {
		return a.hostname
	}
	if strings.Contains(a.ip, ".") {
		return strings.ReplaceAll(a.ip, ".", "-")
	}
	if strings.Contains(a.ip, ":") {
		h := strings.ReplaceAll(a.ip, ":", "-")
		if strings.HasSuffix(h, "-") {
			return h + "0"
		}
		return h
	}
	return ""
}

// matchPort reports whether a Service or slice port matches a query's _port._proto (empty
// query parts match anything; names compare case-insensitively).
func matchPort(q query, p port) bool {
	return (q.port == "" || strings.EqualFold(q.port, p.name)) &&
		(q.protocol == "" || strings.EqualFold(q.protocol, p.protocol))
}

// records returns the entries for name (lower case) in zone (the zone as the query spelled
// it, used in SRV targets). The caller holds b.st.mu for reading.
func (b *backend) records(name, zone string) ([]entry, error) {
	q, err := parse(name, strings.ToLower(zone))
	if err != nil {
		return nil, err
	}
	if q.podOrSvc == "" {
		return nil, nil
	}
	if isReverse(name) {
		return nil, errNoItems
	}
	if !b.st.hasNamespace(q.namespace) {
		return nil, errNoItems
	}
	if q.podOrSvc == "pod" {
		return b.findPods(q, zone)
	}
	return b.findServices(q, zone)
}

// findPods answers <ip-with-dashes>.<ns>.pod.<zone> (DNS-07).
func (b *backend) findPods(q query, zone string) ([]entry, error) {
	if b.podMode == PodsDisabled {
		return nil, errNoItems
	}
	if q.service == "" {
		return nil, nil
	}
	var ip string
	if strings.Count(q.service, "-") == 3 && !strings.Contains(q.service, "--") {
		ip = strings.ReplaceAll(q.service, "-", ".")
	} else {
		ip = strings.ReplaceAll(q.service, "-", ":")
	}
	target := q.service + "." + q.namespace + ".pod." + zone
	if b.podMode == PodsInsecure {
		if net.ParseIP(ip) == nil {
			return nil, errNoItems
		}
		return []entry{{host: ip, ttl: b.ttl, target: target}}, nil
	}
	var out []entry
	for _, p := range b.st.podsByIP[ip] {
		if strings.EqualFold(p.meta.Namespace, q.namespace) {
			out = append(out, entry{host: ip, ttl: b.ttl, target: target})
		}
	}
	if len(out) == 0 {
		return nil, errNoItems
	}
	return out, nil
}

// findServices answers names under svc.<zone> (DNS-02, DNS-03, DNS-05, DNS-06).
func (b *backend) findServices(q query, zone string) ([]entry, error) {
	if q.service == "" {
		return nil, nil // <ns>.svc.<zone>: the namespace exists (DNS-C-03)
	}
	key := svcKey(q.service, q.namespace)
	svc := b.st.services[key]
	if svc == nil {
		return nil, errNoItems
	}
	svcName := svc.meta.Name + "." + svc.meta.Namespace + ".svc." + zone
	var out []entry
	switch {
	case svc.typ == corev1.ServiceTypeExternalName:
		if q.endpoint != "" || q.port != "" || q.protocol != "" {
			return nil, errNoItems
		}
		e := entry{host: svc.externalName, ttl: b.ttl, target: svcName}
		if t, _ := e.hostType(); t != mdns.TypeCNAME {
			return nil, errNoItems // an IP as externalName is not served
		}
		return []entry{e}, nil
	case svc.headless() || q.endpoint != "":
		for _, es := range b.st.slicesOf(key) {
			for _, a := range es.addrs {
				h := endpointHostname(a)
				if q.endpoint != "" && !strings.EqualFold(q.endpoint, h) {
					continue
				}
				for _, p := range es.ports {
					if matchPort(q, p) {
						out = append(out, entry{host: a.ip, port: p.port, ttl: b.ttl, target: h + "." + svcName})
					}
				}
			}
		}
	default:
		for _, p := range svc.ports {
			if !matchPort(q, p) {
				continue
			}
			for _, ip := range svc.clusterIPs {
				out = append(out, entry{host: ip, port: p.port, ttl: b.ttl, target: svcName})
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoItems
	}
	return out, nil
}

// services returns the entries for a question, with the per-type rules of CoreDNS's
// Kubernetes.Services: the dns-version TXT record, TXT elsewhere only as existence, the
// ns.dns.<zone> name, and no CNAME entries for SRV. The caller holds b.st.mu for reading.
func (b *backend) services(name, zone string, qtype uint16) ([]entry, error) {
	switch qtype {
	case mdns.TypeTXT:
		segs := mdns.SplitDomainName(strings.TrimSuffix(name[:len(name)-len(zone)], "."))
		if len(segs) == 1 && segs[0] == "dns-version" {
			return []entry{{text: SchemaVersion, ttl: schemaTTL}}, nil
		}
		if es, _ := b.records(name, zone); len(es) > 0 {
			return nil, nil // the name exists: NODATA
		}
		return nil, errNoItems
	case mdns.TypeNS:
		var out []entry
		for _, rr := range b.nsAddrs(zone) {
			out = append(out, entry{host: rrIP(rr), ttl: b.ttl, target: rr.Header().Name})
		}
		return out, nil
	}
	if strings.HasPrefix(name, "ns.dns.") && strings.Index(name, zone) == len("ns.dns.") {
		var out []entry
		for _, rr := range b.nsAddrs(zone) {
			if rr.Header().Rrtype == qtype {
				out = append(out, entry{host: rrIP(rr), ttl: b.ttl, target: name})
			}
		}
		return out, nil
	}
	es, err := b.records(name, zone)
	if qtype != mdns.TypeSRV {
		return es, err
	}
	internal := es[:0:0]
	for _, e := range es {
		if t, _ := e.hostType(); t != mdns.TypeCNAME {
			internal = append(internal, e)
		}
	}
	return internal, err
}

// nsAddrs returns the addresses of this DNS server as the cluster sees it (CoreDNS's
// nsAddrs): for each non-loopback listen IP, the Services whose endpoints hold it (their
// cluster IPs, or for a headless Service the endpoint names); without such endpoints the
// listen IPs themselves, named ns.dns.<zone>. The caller holds b.st.mu for reading.
func (b *backend) nsAddrs(zone string) []mdns.RR {
	var names, ips []string
	found := false
	for _, local := range b.localIPs {
		for _, es := range b.st.slicesWithIP(local) {
			found = true
			svc := b.st.services[svcKey(es.service, es.meta.Namespace)]
			if svc == nil {
				continue
			}
			svcName := svc.meta.Name + "." + svc.meta.Namespace + ".svc." + zone
			if svc.headless() {
				for _, a := range es.addrs {
					names = append(names, endpointHostname(a)+"."+svcName)
					ips = append(ips, a.ip)
				}
				continue
			}
			for _, ip := range svc.clusterIPs {
				names = append(names, svcName)
				ips = append(ips, ip)
			}
		}
	}
	if !found {
		for _, local := range b.localIPs {
			names = append(names, "ns.dns."+zone)
			ips = append(ips, local)
		}
	}
	var out []mdns.RR
	for i, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		hdr := mdns.RR_Header{Name: names[i], Class: mdns.ClassINET}
		if ip.To4() == nil {
			hdr.Rrtype = mdns.TypeAAAA
			out = append(out, &mdns.AAAA{Hdr: hdr, AAAA: ip})
			continue
		}
		hdr.Rrtype = mdns.TypeA
		out = append(out, &mdns.A{Hdr: hdr, A: ip.To4()})
	}
	return out
}

func rrIP(rr mdns.RR) string {
	switch v := rr.(type) {
	case *mdns.A:
		return v.A.String()
	case *mdns.AAAA:
		return v.AAAA.String()
	}
	return ""
}

// reverse returns the PTR entries for a reverse name: the Service with that cluster IP,
// else every ready endpoint with that address (DNS-02, DNS-03). The caller holds b.st.mu
// for reading.
func (b *backend) reverse(name, zone string) ([]entry, error) {
	ip := reverseAddr(name)
	if ip == "" {
		_, err := b.records(name, zone)
		return nil, err
	}
	if svc := b.st.svcByIP[ip]; svc != nil {
		return []entry{{host: svc.meta.Name + "." + svc.meta.Namespace + ".svc." + b.primary, ttl: b.ttl}}, nil
	}
	var out []entry
	for _, es := range b.st.slicesWithIP(ip) {
		if es.service == "" {
			continue // not a Service's slice: no name to give
		}
		for _, a := range es.addrs {
			if a.ip == ip {
				out = append(out, entry{host: endpointHostname(a) + "." + es.service + "." + es.meta.Namespace + ".svc." + b.primary, ttl: b.ttl})
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoItems
	}
	return out, nil
}
