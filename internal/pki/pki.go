package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Identities the package hands out.
const (
	// AdminUser is the common name of the admin client certificate.
	AdminUser = "system:admin"
	// MastersGroup is the organization of the admin client certificate (cluster-admin).
	MastersGroup = "system:masters"
	// JoinTokenUser is the user the join token authenticates as.
	JoinTokenUser = "kubesvc:node-joiner"
	// BootstrappersGroup is the group of JoinTokenUser.
	BootstrappersGroup = "system:bootstrappers"
)

const (
	caValidity      = 10 * 365 * 24 * time.Hour
	leafValidity    = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
	clockSkew       = 5 * time.Minute
	servingCN       = "kube-apiserver"
	tlsDirName      = "tls"
	tokenFileName   = "token"
	kubeconfigName  = "admin.kubeconfig"
	caBase          = "ca"
	servingBase     = "serving"
	adminBase       = "admin"
	certExt, keyExt = ".crt", ".key"
)

// Config says where the PKI lives and what the serving certificate must cover.
type Config struct {
	// Dir is the data dir; files go to Dir/tls/... and Dir/token.
	Dir string
	// Hosts are extra SANs for the serving certificate: IP addresses and DNS names.
	Hosts []string
	// ServiceIP is the first IP of the service CIDR (the kubernetes Service), added as a SAN.
	// The zero Addr adds nothing.
	ServiceIP netip.Addr
	// Token is the join token; empty means read Dir/token or create it. A set token is written
	// to Dir/token.
	Token string
}

// Bundle is the loaded PKI: the CA, the server's TLS configuration, the join token and the
// token table Authenticate consults. Its methods are safe for concurrent use.
type Bundle struct {
	// CA is the cluster CA certificate.
	CA *x509.Certificate
	// CAPEM is CA in PEM form, for kubeconfigs and agents.
	CAPEM []byte
	// ServingCert is the leaf of ServingTLS.
	ServingCert *x509.Certificate
	// ServingTLS serves the API: the serving certificate, TLS 1.2+, and client certificates
	// verified against the CA when given (VerifyClientCertIfGiven).
	ServingTLS *tls.Config
	// Token is the join token.
	Token string

	dir          string
	caKey        crypto.Signer
	adminCertPEM []byte
	adminKeyPEM  []byte

	mu     sync.RWMutex
	tokens []tokenEntry
}

// Ensure loads the PKI from cfg.Dir, creating what is missing: on first start the CA, the
// serving and admin certificates and the token; later starts reuse them and re-issue only leaf
// certificates that are missing, invalid, within 30 days of expiry or (serving) whose SANs no
// longer cover the required hosts.
func Ensure(cfg Config) (*Bundle, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: Config.Dir is empty")
	}
	sans, err := servingSANs(cfg)
	if err != nil {
		return nil, err
	}
	tlsDir := filepath.Join(cfg.Dir, tlsDirName)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", tlsDir, err)
	}
	now := time.Now()

	ca, err := ensureCA(tlsDir, now)
	if err != nil {
		return nil, err
	}
	serving, err := ensureLeaf(tlsDir, servingBase, ca, now,
		leafSpec{commonName: servingCN, sans: sans, usage: x509.ExtKeyUsageServerAuth, validity: leafValidity},
		func(leaf *x509.Certificate) bool { return sans.coveredBy(leaf) })
	if err != nil {
		return nil, err
	}
	admin, err := ensureLeaf(tlsDir, adminBase, ca, now,
		leafSpec{commonName: AdminUser, orgs: []string{MastersGroup}, usage: x509.ExtKeyUsageClientAuth, validity: leafValidity},
		func(leaf *x509.Certificate) bool {
			return leaf.Subject.CommonName == AdminUser && slices.Equal(leaf.Subject.Organization, []string{MastersGroup})
		})
	if err != nil {
		return nil, err
	}
	token, err := ensureToken(filepath.Join(cfg.Dir, tokenFileName), cfg.Token)
	if err != nil {
		return nil, err
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	b := &Bundle{
		CA:          ca.cert,
		CAPEM:       ca.certPEM,
		ServingCert: serving.tls.Leaf,
		ServingTLS: &tls.Config{
			Certificates: []tls.Certificate{serving.tls},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
		Token:        token,
		dir:          cfg.Dir,
		caKey:        ca.key,
		adminCertPEM: admin.certPEM,
		adminKeyPEM:  admin.keyPEM,
	}
	if err := b.AddToken(token, User{Name: JoinTokenUser, Groups: []string{BootstrappersGroup}}); err != nil {
		return nil, err
	}
	return b, nil
}

// caPair is the loaded or created CA.
type caPair struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// ensureCA loads tls/ca.{crt,key} or creates them when ca.crt is missing. The key is written
// before the certificate, so a crash in between leaves no ca.crt and the next start starts over.
func ensureCA(tlsDir string, now time.Time) (*caPair, error) {
	certPath, keyPath := pairPaths(tlsDir, caBase)
	kp, err := loadPair(certPath, keyPath)
	switch {
	case err == nil:
		if !kp.tls.Leaf.IsCA {
			return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
		}
		if now.After(kp.tls.Leaf.NotAfter) {
			return nil, fmt.Errorf("pki: CA %s expired at %s", certPath, kp.tls.Leaf.NotAfter.Format(time.RFC3339))
		}
		signer, ok := kp.tls.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("pki: CA key %s cannot sign", keyPath)
		}
		return &caPair{cert: kp.tls.Leaf, certPEM: kp.certPEM, key: signer}, nil
	case errors.Is(err, errCertMissing):
		// First start (or a crash before ca.crt was written): create below.
	default:
		return nil, fmt.Errorf("pki: load CA (refusing to replace it): %w", err)
	}

	certPEM, keyPEM, err := newCA(now)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	kp, err = parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA: %w", err)
	}
	return &caPair{cert: kp.tls.Leaf, certPEM: certPEM, key: kp.tls.PrivateKey.(crypto.Signer)}, nil
}

// ensureLeaf reuses tls/<base>.{crt,key} when they parse, match, chain to ca, carry spec's
// extended key usage, are not within renewBefore of expiry and pass keep; otherwise it issues a
// new pair from spec.
func ensureLeaf(tlsDir, base string, ca *caPair, now time.Time, spec leafSpec, keep func(*x509.Certificate) bool) (*keyPair, error) {
	certPath, keyPath := pairPaths(tlsDir, base)
	kp, err := loadPair(certPath, keyPath)
	switch {
	case err == nil:
		leaf := kp.tls.Leaf
		if leaf.CheckSignatureFrom(ca.cert) == nil && leaf.NotAfter.Sub(now) > renewBefore &&
			slices.Contains(leaf.ExtKeyUsage, spec.usage) && keep(leaf) {
			return kp, nil
		}
	case errors.Is(err, errCertMissing), errors.Is(err, fs.ErrNotExist), errors.Is(err, errBadPair):
		// Derived data: issue a new pair below.
	default:
		return nil, fmt.Errorf("pki: load %s: %w", certPath, err)
	}

	certPEM, keyPEM, err := spec.issue(ca, now)
	if err != nil {
		return nil, fmt.Errorf("pki: issue %s certificate: %w", base, err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	kp, err = parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new %s certificate: %w", base, err)
	}
	return kp, nil
}

func pairPaths(dir, base string) (certPath, keyPath string) {
	return filepath.Join(dir, base+certExt), filepath.Join(dir, base+keyExt)
}
