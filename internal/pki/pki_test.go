package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var testServiceIP = netip.MustParseAddr("10.43.0.1")

func ensure(t *testing.T, cfg Config) *Bundle {
	t.Helper()
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readFile(t, path))
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestEnsureFirstStart(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	b := ensure(t, Config{Dir: dir, Hosts: []string{"203.0.113.7", "api.example.com", " ", "[fd00::1]"}, ServiceIP: testServiceIP})

	files := []struct {
		name string
		path string
		mode fs.FileMode
	}{
		{name: "CA cert", path: "tls/ca.crt", mode: 0o644},
		{name: "CA key", path: "tls/ca.key", mode: 0o600},
		{name: "serving cert", path: "tls/serving.crt", mode: 0o644},
		{name: "serving key", path: "tls/serving.key", mode: 0o600},
		{name: "admin cert", path: "tls/admin.crt", mode: 0o644},
		{name: "admin key", path: "tls/admin.key", mode: 0o600},
		{name: "token", path: "token", mode: 0o600},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, f.path))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != f.mode {
				t.Errorf("mode = %v, want %v", got, f.mode)
			}
		})
	}

	t.Run("CA", func(t *testing.T) {
		ca := parseCertFile(t, filepath.Join(dir, "tls/ca.crt"))
		if !ca.Equal(b.CA) || !bytes.Equal(b.CAPEM, readFile(t, filepath.Join(dir, "tls/ca.crt"))) {
			t.Error("Bundle.CA/CAPEM differ from tls/ca.crt")
		}
		if !ca.IsCA || !strings.HasPrefix(ca.Subject.CommonName, "kubesvc-ca@") {
			t.Errorf("IsCA=%v CN=%q", ca.IsCA, ca.Subject.CommonName)
		}
		if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
		}
		if min := start.Add(10*365*24*time.Hour - time.Hour); ca.NotAfter.Before(min) {
			t.Errorf("CA NotAfter = %v, want about 10 years", ca.NotAfter)
		}
	})

	t.Run("serving", func(t *testing.T) {
		c := parseCertFile(t, filepath.Join(dir, "tls/serving.crt"))
		if err := c.CheckSignatureFrom(b.CA); err != nil {
			t.Fatal(err)
		}
		if !c.Equal(b.ServingCert) {
			t.Error("Bundle.ServingCert differs from tls/serving.crt")
		}
		for _, host := range []string{"127.0.0.1", "::1", "localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.43.0.1",
			"203.0.113.7", "api.example.com", "fd00::1"} {
			if err := c.VerifyHostname(host); err != nil {
				t.Errorf("serving cert does not cover %s: %v", host, err)
			}
		}
		if d := c.NotAfter.Sub(start); d < 364*24*time.Hour || d > 366*24*time.Hour {
			t.Errorf("serving validity %v, want 1 year", d)
		}
		if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			t.Errorf("ExtKeyUsage = %v, want server auth", c.ExtKeyUsage)
		}
	})

	t.Run("admin", func(t *testing.T) {
		c := parseCertFile(t, filepath.Join(dir, "tls/admin.crt"))
		if err := c.CheckSignatureFrom(b.CA); err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != AdminUser || !slices.Equal(c.Subject.Organization, []string{MastersGroup}) {
			t.Errorf("subject = %v, want CN=%s O=%s", c.Subject, AdminUser, MastersGroup)
		}
		if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("ExtKeyUsage = %v, want client auth", c.ExtKeyUsage)
		}
	})

	t.Run("token", func(t *testing.T) {
		raw, err := hex.DecodeString(b.Token)
		if err != nil || len(raw) != 32 {
			t.Errorf("token %q is not 32 bytes of hex", b.Token)
		}
		if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "token")))); got != b.Token {
			t.Errorf("token file %q, Bundle.Token %q", got, b.Token)
		}
	})

	t.Run("ServingTLS", func(t *testing.T) {
		tc := b.ServingTLS
		if tc.MinVersion < 0x0303 || len(tc.Certificates) != 1 || tc.ClientCAs == nil {
			t.Errorf("MinVersion=%#x certs=%d ClientCAs=%v", tc.MinVersion, len(tc.Certificates), tc.ClientCAs)
		}
		if tc.ClientAuth.String() != "VerifyClientCertIfGiven" {
			t.Errorf("ClientAuth = %v", tc.ClientAuth)
		}
	})
}

func TestEnsureSecondStartReuses(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Hosts: []string{"api.example.com"}, ServiceIP: testServiceIP}
	first := ensure(t, cfg)
	paths := []string{"tls/ca.crt", "tls/ca.key", "tls/serving.crt", "tls/serving.key", "tls/admin.crt", "tls/admin.key", "token"}
	before := map[string][]byte{}
	for _, p := range paths {
		before[p] = readFile(t, filepath.Join(dir, p))
	}

	second := ensure(t, cfg)
	if !bytes.Equal(first.CAPEM, second.CAPEM) || first.Token != second.Token {
		t.Error("second start changed the CA or the token")
	}
	for _, p := range paths {
		if !bytes.Equal(before[p], readFile(t, filepath.Join(dir, p))) {
			t.Errorf("%s rewritten on second start", p)
		}
	}
}

// writeLeaf replaces tls/<base>.{crt,key} with a certificate issued by ca from spec.
func writeLeaf(t *testing.T, dir, base string, ca *caPair, spec leafSpec) {
	t.Helper()
	certPEM, keyPEM, err := spec.issue(ca, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := pairPaths(filepath.Join(dir, tlsDirName), base)
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureServingReissue(t *testing.T) {
	base := Config{Hosts: []string{"api.example.com", "203.0.113.7"}, ServiceIP: testServiceIP}
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string, b *Bundle) // damage or age the first start's files
		cfg     func(cfg Config) Config                   // the second start's config
		reissue bool
	}{
		{
			name:    "unchanged",
			reissue: false,
		},
		{
			name:    "host removed is still covered",
			cfg:     func(c Config) Config { c.Hosts = c.Hosts[:1]; return c },
			reissue: false,
		},
		{
			name:    "host case and trailing dot",
			cfg:     func(c Config) Config { c.Hosts = []string{"API.example.com.", "203.0.113.7"}; return c },
			reissue: false,
		},
		{
			name:    "DNS name added",
			cfg:     func(c Config) Config { c.Hosts = append(c.Hosts, "other.example.com"); return c },
			reissue: true,
		},
		{
			name:    "IP added",
			cfg:     func(c Config) Config { c.Hosts = append(c.Hosts, "2001:db8::5"); return c },
			reissue: true,
		},
		{
			name:    "service IP changed",
			cfg:     func(c Config) Config { c.ServiceIP = netip.MustParseAddr("10.96.0.1"); return c },
			reissue: true,
		},
		{
			name: "within 30 days of expiry",
			prepare: func(t *testing.T, dir string, b *Bundle) {
				sans, _ := servingSANs(Config{Hosts: base.Hosts, ServiceIP: base.ServiceIP})
				writeLeaf(t, dir, servingBase, &caPair{cert: b.CA, key: b.caKey},
					leafSpec{commonName: servingCN, sans: sans, usage: x509.ExtKeyUsageServerAuth, validity: 20 * 24 * time.Hour})
			},
			reissue: true,
		},
		{
			name: "signed by another CA",
			prepare: func(t *testing.T, dir string, _ *Bundle) {
				other := ensure(t, Config{Dir: t.TempDir()})
				sans, _ := servingSANs(Config{Hosts: base.Hosts, ServiceIP: base.ServiceIP})
				writeLeaf(t, dir, servingBase, &caPair{cert: other.CA, key: other.caKey},
					leafSpec{commonName: servingCN, sans: sans, usage: x509.ExtKeyUsageServerAuth, validity: leafValidity})
			},
			reissue: true,
		},
		{
			name: "key missing",
			prepare: func(t *testing.T, dir string, _ *Bundle) {
				if err := os.Remove(filepath.Join(dir, "tls/serving.key")); err != nil {
					t.Fatal(err)
				}
			},
			reissue: true,
		},
		{
			name: "cert garbage",
			prepare: func(t *testing.T, dir string, _ *Bundle) {
				if err := os.WriteFile(filepath.Join(dir, "tls/serving.crt"), []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			reissue: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := base
			cfg.Dir = dir
			first := ensure(t, cfg)
			if tt.prepare != nil {
				tt.prepare(t, dir, first)
			}
			before := readFile(t, filepath.Join(dir, "tls/serving.crt"))
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			second := ensure(t, cfg)

			if !bytes.Equal(first.CAPEM, second.CAPEM) {
				t.Error("CA changed")
			}
			after := readFile(t, filepath.Join(dir, "tls/serving.crt"))
			if got := !bytes.Equal(before, after); got != tt.reissue {
				t.Errorf("serving cert re-issued = %v, want %v", got, tt.reissue)
			}
			sans, err := servingSANs(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !sans.coveredBy(second.ServingCert) || second.ServingCert.CheckSignatureFrom(second.CA) != nil {
				t.Error("serving cert after second start does not cover the config or chain to the CA")
			}
			if time.Until(second.ServingCert.NotAfter) < renewBefore {
				t.Errorf("serving cert expires %v", second.ServingCert.NotAfter)
			}
		})
	}
}

func TestEnsureCAErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{
			name: "CA key missing",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "tls/ca.key")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "CA key does not match",
			prepare: func(t *testing.T, dir string) {
				_, keyPEM, err := newKey()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "tls/ca.key"), keyPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ensure(t, Config{Dir: dir})
			tt.prepare(t, dir)
			_, err := Ensure(Config{Dir: dir})
			if err == nil {
				t.Fatal("Ensure replaced a broken CA instead of failing")
			}
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errBadPair) {
				t.Errorf("error %v wraps neither fs.ErrNotExist nor errBadPair", err)
			}
		})
	}
}

func TestEnsureCAKeyWithoutCertStartsOver(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, keyPEM, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	// A crash between writing ca.key and ca.crt.
	if err := os.WriteFile(filepath.Join(dir, "tls/ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	b := ensure(t, Config{Dir: dir})
	if b.ServingCert.CheckSignatureFrom(b.CA) != nil {
		t.Error("serving cert does not chain to the new CA")
	}
}

func TestEnsureToken(t *testing.T) {
	tests := []struct {
		name      string
		fileToken string // written to Dir/token before Ensure; "" = no file
		cfgToken  string
		want      string
		wantErr   bool
	}{
		{name: "configured token written", cfgToken: "my-secret-token", want: "my-secret-token"},
		{name: "configured token overrides file", fileToken: "old-token\n", cfgToken: "new-token", want: "new-token"},
		{name: "file token reused", fileToken: "from-file\n", want: "from-file"},
		{name: "empty file gets a new token", fileToken: "\n"},
		{name: "configured token with space", cfgToken: "a b", wantErr: true},
		{name: "file token with control char", fileToken: "a\x01b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "token")
			if tt.fileToken != "" {
				if err := os.WriteFile(path, []byte(tt.fileToken), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Ensure(Config{Dir: dir, Token: tt.cfgToken})
			if tt.wantErr {
				if err == nil {
					t.Fatal("Ensure succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && b.Token != tt.want {
				t.Errorf("Token = %q, want %q", b.Token, tt.want)
			}
			if tt.want == "" && len(b.Token) != 64 {
				t.Errorf("generated token %q, want 64 hex characters", b.Token)
			}
			if got := strings.TrimSpace(string(readFile(t, path))); got != b.Token {
				t.Errorf("token file %q, want %q", got, b.Token)
			}
		})
	}
}

func TestEnsureConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(dir string) Config
	}{
		{name: "no dir", cfg: func(string) Config { return Config{} }},
		{name: "host with port", cfg: func(d string) Config { return Config{Dir: d, Hosts: []string{"10.0.0.1:6443"}} }},
		{name: "host with scheme", cfg: func(d string) Config { return Config{Dir: d, Hosts: []string{"https://example.com"}} }},
		{name: "IP with zone", cfg: func(d string) Config { return Config{Dir: d, Hosts: []string{"fe80::1%eth0"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Ensure(tt.cfg(t.TempDir())); err == nil {
				t.Error("Ensure succeeded, want error")
			}
		})
	}
}
