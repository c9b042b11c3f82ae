package agent

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"kubesvc/internal/agent/join"
)

// credentialsFile is the node identity cached in the data dir.
const credentialsFile = "node-credentials.json"

// renewBefore: a cached certificate closer than this to its expiry is replaced by a new join.
const renewBefore = 30 * 24 * time.Hour

// credentials loads the cached node identity or joins with the token, and builds the client.
func (a *Agent) credentials(ctx context.Context) error {
	path := filepath.Join(a.cfg.DataDir, credentialsFile)
	if creds, err := loadCredentials(path, a.nodeName); err == nil {
		if err := a.useCredentials(ctx, creds); err == nil {
			return nil
		}
	}
	var creds *join.Credentials
	var err error
	// The server may still be starting: retry for a while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		creds, err = join.Join(ctx, a.cfg.Server, a.cfg.Token, a.nodeName)
		if err == nil || errors.Is(err, join.ErrCAMismatch) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	data, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("agent: save credentials: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("agent: save credentials: %w", err)
	}
	return a.useCredentials(ctx, creds)
}

// loadCredentials reads cached credentials for node that are not about to expire.
func loadCredentials(path, node string) (*join.Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c join.Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	block, _ := pem.Decode(c.CertPEM)
	if block == nil {
		return nil, errors.New("no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if cert.Subject.CommonName != join.NodeUserPrefix+node || time.Until(cert.NotAfter) < renewBefore {
		return nil, errors.New("certificate for another node or expiring")
	}
	return &c, nil
}

// useCredentials builds the client and checks that the server accepts the identity.
func (a *Agent) useCredentials(ctx context.Context, c *join.Credentials) error {
	cfg := &rest.Config{
		Host:            a.cfg.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAPEM, CertData: c.CertPEM, KeyData: c.KeyPEM},
		QPS:             100,
		Burst:           200,
		UserAgent:       "kubesvc-agent/" + a.nodeName,
	}
	useProtobuf(cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/api").DoRaw(cctx); err != nil {
		return fmt.Errorf("agent: server rejects the node identity: %w", err)
	}
	a.RESTConfig, a.client, a.cluster, a.caPEM = cfg, cs, c.Cluster, c.CAPEM
	return nil
}

func eventScheme() *runtime.Scheme { return scheme.Scheme }

// useProtobuf makes a client speak protobuf with JSON as fallback, as kube-proxy's and the
// kubelet's clients do (their default contentType): lists of 10k Services and EndpointSlices
// decode several times faster than as JSON. Only for built-in kinds (all the agent reads).
func useProtobuf(cfg *rest.Config) {
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
}
