// Package join is how a node agent obtains its identity from the API server with the join token
// alone (the server's `--token`, or DATA_DIR/token).
//
//  1. GET /kubesvc/v1/cacert without TLS verification returns the cluster CA and
//     HMAC-SHA256(token, CA PEM). The agent accepts the CA only if the HMAC matches its token, so
//     the token never goes to a server that cannot prove it knows it.
//  2. POST /kubesvc/v1/join over TLS verified with that CA, "Authorization: Bearer <token>" and
//     {"nodeName": ...}, returns a client certificate CN=system:node:<name>, O=system:nodes and
//     the cluster settings a kubelet would get from flags (cluster DNS, domain, CIDRs).
//
// The server side is Handler; the agent side is Join. Imported by internal/server and
// internal/agent.
package join

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Paths served by Handler.
const (
	CACertPath = "/kubesvc/v1/cacert"
	JoinPath   = "/kubesvc/v1/join"
)

// Node identities, as Kubernetes' Node authorizer names them.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// KubeletClientUser is the common name of the client certificate the API server presents to
// agents for pods/log, exec, attach and portforward; agents accept only it.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// certValidity is the lifetime of a node client certificate; agents re-join before it ends.
const certValidity = 365 * 24 * time.Hour

// Cluster is what a node learns at join: the settings kubelet flags would carry.
type Cluster struct {
	ClusterDNS    string `json:"clusterDNS"`
	ClusterDomain string `json:"clusterDomain"`
	ServiceCIDR   string `json:"serviceCIDR"`
	ClusterCIDR   string `json:"clusterCIDR"`
}

// Credentials is a node's identity.
type Credentials struct {
	CAPEM   []byte  `json:"caPEM"`
	CertPEM []byte  `json:"certPEM"`
	KeyPEM  []byte  `json:"keyPEM"`
	Cluster Cluster `json:"cluster"`
}

type caResponse struct {
	CAPEM []byte `json:"caPEM"`
	HMAC  string `json:"hmac"`
}

type joinRequest struct {
	NodeName string `json:"nodeName"`
}

// HandlerConfig configures Handler.
type HandlerConfig struct {
	// CAPEM is the cluster CA certificate.
	CAPEM []byte
	// Token returns the current join token.
	Token func() string
	// Authenticate reports whether r carries the join token (the server's PKI decides).
	Authenticate func(r *http.Request) bool
	// Issue signs a client certificate for user and groups.
	Issue func(user string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error)
	// Cluster is returned to joining nodes.
	Cluster Cluster
}

// Handler serves CACertPath and JoinPath; other paths get 404.
func Handler(cfg HandlerConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(CACertPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		writeJSON(w, caResponse{CAPEM: cfg.CAPEM, HMAC: mac(cfg.Token(), cfg.CAPEM)})
	})
	mux.HandleFunc(JoinPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !cfg.Authenticate(r) {
			http.Error(w, "join token required", http.StatusUnauthorized)
			return
		}
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad join request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
			http.Error(w, fmt.Sprintf("invalid node name %q: %s", req.NodeName, strings.Join(errs, "; ")), http.StatusBadRequest)
			return
		}
		cert, key, err := cfg.Issue(NodeUserPrefix+req.NodeName, []string{NodesGroup}, certValidity)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, Credentials{CAPEM: cfg.CAPEM, CertPEM: cert, KeyPEM: key, Cluster: cfg.Cluster})
	})
	return mux
}

func mac(token string, data []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ErrCAMismatch means the server could not prove it knows the token.
var ErrCAMismatch = errors.New("join: the server's CA is not signed with this token (wrong --token or --server?)")

// Join obtains node credentials for nodeName from the server at serverURL with token.
func Join(ctx context.Context, serverURL, token, nodeName string) (*Credentials, error) {
	serverURL = strings.TrimSuffix(serverURL, "/")
	insecure := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // verified by HMAC below
	}}
	var ca caResponse
	if err := do(ctx, insecure, http.MethodGet, serverURL+CACertPath, "", nil, &ca); err != nil {
		return nil, fmt.Errorf("join: fetch CA: %w", err)
	}
	if !hmac.Equal([]byte(mac(token, ca.CAPEM)), []byte(ca.HMAC)) {
		return nil, ErrCAMismatch
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CAPEM) {
		return nil, errors.New("join: server sent no CA certificate")
	}
	verified := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	body, _ := json.Marshal(joinRequest{NodeName: nodeName})
	var creds Credentials
	if err := do(ctx, verified, http.MethodPost, serverURL+JoinPath, token, body, &creds); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	creds.CAPEM = ca.CAPEM
	return &creds, nil
}

func do(ctx context.Context, c *http.Client, method, url, token string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}

// NodeName returns the node name of a node user, ok=false for other users.
func NodeName(user string, groups []string) (string, bool) {
	name, ok := strings.CutPrefix(user, NodeUserPrefix)
	if !ok || name == "" {
		return "", false
	}
	for _, g := range groups {
		if g == NodesGroup {
			return name, true
		}
	}
	return "", false
}
