package pki

import (
	"fmt"
	"net/url"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names inside the admin kubeconfig.
const (
	kubeconfigCluster = "kubesvc"
	kubeconfigContext = "kubesvc"
	kubeconfigUser    = "admin"
)

// WriteAdminKubeconfig writes Dir/admin.kubeconfig for serverURL (https://host:port) with the
// CA and the admin client certificate embedded as data: cluster "kubesvc", context "kubesvc",
// user "admin", mode 0600. It returns the path.
func (b *Bundle) WriteAdminKubeconfig(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("pki: kubeconfig server URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("pki: kubeconfig server URL %q: want https://host[:port]", serverURL)
	}
	cfg := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{kubeconfigCluster: {
			Server:                   serverURL,
			CertificateAuthorityData: b.CAPEM,
		}},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{kubeconfigUser: {
			ClientCertificateData: b.adminCertPEM,
			ClientKeyData:         b.adminKeyPEM,
		}},
		Contexts: map[string]*clientcmdapi.Context{kubeconfigContext: {
			Cluster:  kubeconfigCluster,
			AuthInfo: kubeconfigUser,
		}},
		CurrentContext: kubeconfigContext,
	}
	data, err := clientcmd.Write(cfg)
	if err != nil {
		return "", fmt.Errorf("pki: encode kubeconfig: %w", err)
	}
	path := filepath.Join(b.dir, kubeconfigName)
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return "", err
	}
	return path, nil
}
