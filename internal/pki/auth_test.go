package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// authResult is what the test server's handler reports about the caller.
type authResult struct {
	User User
	OK   bool
}

// startAuthServer serves Bundle.ServingTLS on 127.0.0.1 and answers every request with what
// Authenticate saw.
func startAuthServer(t *testing.T, b *Bundle) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := b.Authenticate(r)
		_ = json.NewEncoder(w).Encode(authResult{User: u, OK: ok})
	}))
	ts.TLS = b.ServingTLS.Clone()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, cfg *rest.Config, url string) (authResult, error) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("HTTPClientFor: %v", err)
	}
	resp, err := client.Get(url)
	if err != nil {
		return authResult{}, err
	}
	defer resp.Body.Close()
	var res authResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res, nil
}

func TestAuthenticateOverTLS(t *testing.T) {
	dir := t.TempDir()
	b := ensure(t, Config{Dir: dir, ServiceIP: testServiceIP})
	ts := startAuthServer(t, b)
	kubeconfig, err := b.WriteAdminKubeconfig(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	nodeToken := "node-token-0123456789"
	if err := b.AddToken(nodeToken, User{Name: "system:node:n1", Groups: []string{"system:nodes"}}); err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := b.IssueClientCert("system:node:n2", []string{"system:nodes"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := ensure(t, Config{Dir: t.TempDir()})
	foreignCert, foreignKey, err := other.IssueClientCert("system:admin", []string{"system:masters"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// anon trusts the CA and presents no credentials.
	anon := func() *rest.Config {
		return &rest.Config{Host: ts.URL, TLSClientConfig: rest.TLSClientConfig{CAData: b.CAPEM}}
	}

	tests := []struct {
		name    string
		cfg     func(t *testing.T) *rest.Config
		want    authResult
		wantErr bool // the TLS handshake must fail
	}{
		{
			name: "admin kubeconfig client cert",
			cfg: func(t *testing.T) *rest.Config {
				cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			},
			want: authResult{User: User{Name: AdminUser, Groups: []string{MastersGroup}}, OK: true},
		},
		{
			name: "issued node client cert",
			cfg: func(*testing.T) *rest.Config {
				c := anon()
				c.CertData, c.KeyData = nodeCert, nodeKey
				return c
			},
			want: authResult{User: User{Name: "system:node:n2", Groups: []string{"system:nodes"}}, OK: true},
		},
		{
			name: "join token",
			cfg:  func(*testing.T) *rest.Config { c := anon(); c.BearerToken = b.Token; return c },
			want: authResult{User: User{Name: JoinTokenUser, Groups: []string{BootstrappersGroup}}, OK: true},
		},
		{
			name: "added node token",
			cfg:  func(*testing.T) *rest.Config { c := anon(); c.BearerToken = nodeToken; return c },
			want: authResult{User: User{Name: "system:node:n1", Groups: []string{"system:nodes"}}, OK: true},
		},
		{
			name: "wrong token",
			cfg:  func(*testing.T) *rest.Config { c := anon(); c.BearerToken = b.Token + "x"; return c },
			want: authResult{OK: false},
		},
		{
			name: "no credentials",
			cfg:  func(*testing.T) *rest.Config { return anon() },
			want: authResult{OK: false},
		},
		{
			name: "client cert from another CA",
			cfg: func(*testing.T) *rest.Config {
				c := anon()
				c.CertData, c.KeyData = foreignCert, foreignKey
				return c
			},
			wantErr: true,
		},
		{
			name:    "client does not trust the server",
			cfg:     func(*testing.T) *rest.Config { return &rest.Config{Host: ts.URL, BearerToken: b.Token} },
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := get(t, tt.cfg(t), ts.URL+"/api")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("request succeeded as %+v, want handshake failure", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.want.OK || got.User.Name != tt.want.User.Name || !slices.Equal(got.User.Groups, tt.want.User.Groups) {
				t.Errorf("Authenticate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAuthenticateIgnoresChainsFromOtherCAs(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	other := ensure(t, Config{Dir: t.TempDir()})
	certPEM, keyPEM, err := other.IssueClientCert("mallory", []string{"system:masters"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := parsePair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{
		PeerCertificates: []*x509.Certificate{kp.tls.Leaf},
		VerifiedChains:   [][]*x509.Certificate{{kp.tls.Leaf, other.CA}},
	}
	if u, ok := b.Authenticate(r); ok {
		t.Errorf("Authenticate accepted a chain to another CA as %+v", u)
	}
}

func TestTokenTable(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir(), Token: "join-token"})
	req := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	if err := b.AddToken("tok-a", User{Name: "a", Groups: []string{"g"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddToken("tok-a", User{Name: "a2"}); err != nil {
		t.Fatal(err)
	}
	if u, ok := b.Authenticate(req("tok-a")); !ok || u.Name != "a2" {
		t.Errorf("replaced token: %+v %v, want a2", u, ok)
	}
	b.RemoveToken("tok-a")
	if u, ok := b.Authenticate(req("tok-a")); ok {
		t.Errorf("removed token still authenticates as %+v", u)
	}
	if u, ok := b.Authenticate(req("join-token")); !ok || u.Name != JoinTokenUser {
		t.Errorf("join token: %+v %v", u, ok)
	}

	errs := []struct {
		name  string
		token string
		user  User
	}{
		{name: "empty token", token: "", user: User{Name: "x"}},
		{name: "token with space", token: "a b", user: User{Name: "x"}},
		{name: "user without name", token: "tok", user: User{}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.AddToken(tt.token, tt.user); err == nil {
				t.Error("AddToken succeeded, want error")
			}
		})
	}
}

func TestParseBearer(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   string
		ok     bool
	}{
		{name: "bearer", header: "Bearer abc", want: "abc", ok: true},
		{name: "scheme case-insensitive", header: "bearer abc", want: "abc", ok: true},
		{name: "extra spaces", header: "  Bearer   abc  ", want: "abc", ok: true},
		{name: "empty", header: "", ok: false},
		{name: "no token", header: "Bearer", ok: false},
		{name: "blank token", header: "Bearer   ", ok: false},
		{name: "basic", header: "Basic YWJjOmRlZg==", ok: false},
		{name: "token with space", header: "Bearer a b", ok: false},
		{name: "non-ASCII", header: "Bearer tökén", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseBearer(tt.header)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseBearer(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x ", "Basic x", "", "Bearer", "Bearer a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := parseBearer(header)
		if ok != (validToken(token) == nil) {
			t.Fatalf("parseBearer(%q) = %q, %v: ok disagrees with validToken", header, token, ok)
		}
	})
}

func TestIssueClientCertErrors(t *testing.T) {
	b := ensure(t, Config{Dir: t.TempDir()})
	tests := []struct {
		name     string
		user     string
		validity time.Duration
	}{
		{name: "no user", user: "", validity: time.Hour},
		{name: "zero validity", user: "u", validity: 0},
		{name: "negative validity", user: "u", validity: -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := b.IssueClientCert(tt.user, nil, tt.validity); err == nil {
				t.Error("IssueClientCert succeeded, want error")
			}
		})
	}
}

func TestWriteAdminKubeconfig(t *testing.T) {
	dir := t.TempDir()
	b := ensure(t, Config{Dir: dir})
	path, err := b.WriteAdminKubeconfig("https://127.0.0.1:6443")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "admin.kubeconfig") {
		t.Errorf("path = %s", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if cfg.CurrentContext != "kubesvc" || ctx == nil || ctx.Cluster != "kubesvc" || ctx.AuthInfo != "admin" {
		t.Fatalf("current context %q = %+v", cfg.CurrentContext, ctx)
	}
	cluster, user := cfg.Clusters["kubesvc"], cfg.AuthInfos["admin"]
	if cluster == nil || cluster.Server != "https://127.0.0.1:6443" || string(cluster.CertificateAuthorityData) != string(b.CAPEM) {
		t.Errorf("cluster = %+v", cluster)
	}
	if user == nil || len(user.ClientCertificateData) == 0 || len(user.ClientKeyData) == 0 || user.ClientCertificate != "" {
		t.Errorf("user = %+v, want embedded cert and key", user)
	}

	for _, bad := range []struct{ name, url string }{
		{name: "http", url: "http://127.0.0.1:6443"},
		{name: "no host", url: "https://"},
		{name: "unparsable", url: "://x"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := b.WriteAdminKubeconfig(bad.url); err == nil {
				t.Error("WriteAdminKubeconfig succeeded, want error")
			}
		})
	}
}
