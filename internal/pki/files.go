package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

var (
	// errCertMissing: the certificate file of a pair does not exist.
	errCertMissing = errors.New("certificate file missing")
	// errBadPair: the files exist but do not parse or the key does not match the certificate.
	errBadPair = errors.New("invalid certificate/key pair")
)

// keyPair is a certificate and its key as parsed and as PEM.
type keyPair struct {
	tls     tls.Certificate // Leaf is always set
	certPEM []byte
	keyPEM  []byte
}

// loadPair reads a certificate and its key. A missing certificate is errCertMissing; a missing
// key is fs.ErrNotExist; unparsable or mismatched files are errBadPair.
func loadPair(certPath, keyPath string) (*keyPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", certPath, errCertMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	kp, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return kp, nil
}

// parsePair parses PEM certificate and key and checks that they belong together.
func parsePair(certPEM, keyPEM []byte) (*keyPair, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadPair, err)
	}
	if c.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadPair, err)
		}
	}
	return &keyPair{tls: c, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// writeFileAtomic writes data to a temporary file next to path with the given mode, syncs it
// and renames it over path, so readers see the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
