package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// defaultDNSNames are the names in-cluster clients and local tools use for the API server.
var defaultDNSNames = []string{
	"localhost",
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// defaultIPs are the loopback addresses the server is always reachable on.
var defaultIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}

// sanSet is the subject alternative names of the serving certificate; DNS names are lower case
// without a trailing dot, IPs are unmapped.
type sanSet struct {
	dns []string
	ips []netip.Addr
}

// servingSANs is the SAN set the serving certificate must cover for cfg.
func servingSANs(cfg Config) (sanSet, error) {
	s := sanSet{dns: slices.Clone(defaultDNSNames), ips: slices.Clone(defaultIPs)}
	if cfg.ServiceIP.IsValid() {
		s.addIP(cfg.ServiceIP)
	}
	for _, h := range cfg.Hosts {
		if err := s.addHost(h); err != nil {
			return sanSet{}, err
		}
	}
	return s, nil
}

// addHost adds an IP literal (optionally in brackets) or a DNS name; blanks are skipped.
func (s *sanSet) addHost(h string) error {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("pki: host %q: IP with zone cannot be a SAN", h)
		}
		s.addIP(ip)
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !validDNSName(name) {
		return fmt.Errorf("pki: host %q is neither an IP address nor a DNS name", h)
	}
	if !slices.Contains(s.dns, name) {
		s.dns = append(s.dns, name)
	}
	return nil
}

func (s *sanSet) addIP(ip netip.Addr) {
	ip = ip.Unmap()
	if !slices.Contains(s.ips, ip) {
		s.ips = append(s.ips, ip)
	}
}

// validDNSName accepts lower-case host names with an optional leading "*." wildcard label.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for i, label := range strings.Split(name, ".") {
		if i == 0 && label == "*" {
			continue
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// coveredBy reports whether every name and IP of s is a SAN of c (exact match, so a wildcard
// SAN covers only the same wildcard host).
func (s sanSet) coveredBy(c *x509.Certificate) bool {
	for _, name := range s.dns {
		if !slices.ContainsFunc(c.DNSNames, func(got string) bool {
			return strings.EqualFold(strings.TrimSuffix(got, "."), name)
		}) {
			return false
		}
	}
	for _, ip := range s.ips {
		if !slices.ContainsFunc(c.IPAddresses, func(got net.IP) bool {
			a, ok := netip.AddrFromSlice(got)
			return ok && a.Unmap() == ip
		}) {
			return false
		}
	}
	return true
}

// leafSpec describes a leaf certificate to issue.
type leafSpec struct {
	commonName string
	orgs       []string
	sans       sanSet
	usage      x509.ExtKeyUsage
	validity   time.Duration
}

// issue creates a key and a certificate for s signed by ca. NotAfter is capped at the CA's.
func (s leafSpec) issue(ca *caPair, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(s.validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.commonName, Organization: s.orgs},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{s.usage},
		BasicConstraintsValid: true,
		DNSNames:              s.sans.dns,
	}
	for _, ip := range s.sans.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// newCA creates a self-signed CA certificate and key.
func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("kubesvc-ca@%d", now.Unix())},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// newKey creates an ECDSA P-256 key and its PKCS#8 PEM.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: marshal key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
