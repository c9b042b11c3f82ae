// Package dnsconfig writes a pod's /etc/resolv.conf, /etc/hosts and /etc/hostname as the kubelet
// and containerd do (k8s-service-spec.md §4.1, DNS-R-01…03; pkg/kubelet/network/dns and
// kubelet_pods.go managedHostsFileContent).
//
// Imported by internal/agent.
package dnsconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Limits the kubelet applies to a merged resolver configuration.
const (
	MaxNameservers = 3
	MaxSearches    = 32
	MaxSearchChars = 2048
)

// Resolv is a resolver configuration.
type Resolv struct {
	Nameservers []string
	Searches    []string
	Options     []string
}

// ParseResolvConf reads nameserver, search/domain and options lines (the last search or domain
// line wins, as in glibc).
func ParseResolvConf(data []byte) Resolv {
	var r Resolv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				r.Nameservers = append(r.Nameservers, f[1])
			}
		case "search", "domain":
			r.Searches = nil
			for _, s := range f[1:] {
				if s != "." {
					r.Searches = append(r.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			r.Options = append(r.Options, f[1:]...)
		}
	}
	return r
}

// ReadResolvConf parses the file at path; a missing file is an empty configuration.
func ReadResolvConf(path string) (Resolv, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return Resolv{}, nil
	}
	if err != nil {
		return Resolv{}, fmt.Errorf("read --resolv-conf: %w", err)
	}
	return ParseResolvConf(data), nil
}

// Format renders r as containerd writes a pod's resolv.conf: search, nameservers, options.
func (r Resolv) Format() []byte {
	var b bytes.Buffer
	if len(r.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(r.Searches, " "))
	}
	for _, ns := range r.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(r.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(r.Options, " "))
	}
	return b.Bytes()
}

// Config is the node's DNS setup.
type Config struct {
	// ClusterDNS are the cluster DNS server IPs (--cluster-dns); empty makes ClusterFirst
	// fall back to Default.
	ClusterDNS []string
	// ClusterDomain is the cluster zone (cluster.local).
	ClusterDomain string
	// Host is the node's resolver configuration (--resolv-conf), used by Default.
	Host Resolv
}

// PodResolv returns the pod's resolver configuration per dnsPolicy and dnsConfig (DNS-R-01,
// DNS-R-02).
func PodResolv(pod *corev1.Pod, cfg Config) Resolv {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	var r Resolv
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		zone := cfg.ClusterDomain
		r.Nameservers = slices.Clone(cfg.ClusterDNS)
		r.Searches = dedup(append([]string{pod.Namespace + ".svc." + zone, "svc." + zone, zone}, cfg.Host.Searches...))
		r.Options = []string{"ndots:5"}
	case corev1.DNSDefault:
		r = Resolv{Nameservers: slices.Clone(cfg.Host.Nameservers), Searches: slices.Clone(cfg.Host.Searches), Options: slices.Clone(cfg.Host.Options)}
	case corev1.DNSNone:
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		r.Nameservers = dedup(append(r.Nameservers, dc.Nameservers...))
		r.Searches = dedup(append(r.Searches, dc.Searches...))
		r.Options = mergeOptions(r.Options, dc.Options)
	}
	if len(r.Nameservers) > MaxNameservers {
		r.Nameservers = r.Nameservers[:MaxNameservers]
	}
	r.Searches = limitSearches(r.Searches)
	return r
}

func dedup(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func limitSearches(s []string) []string {
	if len(s) > MaxSearches {
		s = s[:MaxSearches]
	}
	for total := len(strings.Join(s, " ")); total > MaxSearchChars && len(s) > 0; total = len(strings.Join(s, " ")) {
		s = s[:len(s)-1]
	}
	return s
}

// mergeOptions merges pod options into the base ones by name; the pod's value wins.
func mergeOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	names := []string{}
	vals := map[string]string{}
	add := func(name, value string) {
		if _, ok := vals[name]; !ok {
			names = append(names, name)
		}
		vals[name] = value
	}
	for _, o := range base {
		n, v, _ := strings.Cut(o, ":")
		add(n, v)
	}
	for _, o := range pod {
		v := ""
		if o.Value != nil {
			v = *o.Value
		}
		add(o.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if vals[n] != "" {
			out = append(out, n+":"+vals[n])
		} else {
			out = append(out, n)
		}
	}
	return out
}

// Hostname returns the pod's hostname and domain (DNS-R-03): spec.hostname or the pod name
// (at most 63 characters, no trailing '-' or '.'), and <subdomain>.<ns>.svc.<zone> when
// spec.subdomain is set.
func Hostname(pod *corev1.Pod, zone string) (hostname, domain string) {
	hostname = pod.Name
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if pod.Spec.Subdomain != "" {
		domain = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + zone
	}
	return hostname, domain
}

// KernelHostname is the hostname set in the pod's UTS namespace: the FQDN with
// setHostnameAsFQDN, else the hostname.
func KernelHostname(pod *corev1.Pod, zone string) (string, error) {
	h, d := Hostname(pod, zone)
	if pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN && d != "" {
		fqdn := h + "." + d
		if len(fqdn) > 64 {
			return "", fmt.Errorf("failed to construct FQDN from pod hostname and cluster domain, FQDN %s is too long (64 characters is the max, %d characters requested)", fqdn, len(fqdn))
		}
		return fqdn, nil
	}
	return h, nil
}

// HostsFile is the kubelet's managed /etc/hosts of a pod with podIPs.
func HostsFile(pod *corev1.Pod, podIPs []string, zone string) []byte {
	hostname, domain := Hostname(pod, zone)
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	b.Write(hostAliases(pod.Spec.HostAliases))
	return b.Bytes()
}

// HostNetworkHostsFile is the kubelet's /etc/hosts of a host-network pod: the node's file and
// the pod's hostAliases.
func HostNetworkHostsFile(pod *corev1.Pod, nodeHosts []byte) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (host network).\n")
	b.Write(nodeHosts)
	b.Write(hostAliases(pod.Spec.HostAliases))
	return b.Bytes()
}

func hostAliases(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}
