package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDNSConfig_BindAddressAndPublication checks the --config file's fields for where the DNS
// listens and whether it publishes its kube-dns slice (the flags: TestDNSConfig_FlagsAndValidate).
func TestDNSConfig_BindAddressAndPublication(t *testing.T) {
	t.Run("config file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(file, []byte("dns:\n  bindAddress: 198.51.100.53\n  unpublished: true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var c DNSConfig
		if err := loadDNSFile(file, &c); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(DNSConfig{BindAddress: "198.51.100.53", Unpublished: true}, c); diff != "" {
			t.Fatalf("config (-want +got):\n%s", diff)
		}
		full := NewConfig()
		full.ConfigFile = file
		if err := full.Load(); err != nil {
			t.Fatalf("Load (strict): %v", err)
		}
	})
}

// TestStartServices_Flags checks that services-only mode names the flag it is missing before
// it opens anything.
func TestStartServices_Flags(t *testing.T) {
	for _, tc := range []struct {
		name, nodeName, nodeIP, kubeconfig, wantErr string
	}{
		{name: "no node name", nodeIP: "198.51.100.11", kubeconfig: "k", wantErr: "--kubeconfig needs --node-name and --node-ip"},
		{name: "no node IP", nodeName: "node1", kubeconfig: "k", wantErr: "--kubeconfig needs --node-name and --node-ip"},
		{name: "bad node IP", nodeName: "node1", nodeIP: "node1", kubeconfig: "k", wantErr: "--node-ip"},
		{name: "bad node name", nodeName: "Node_1", nodeIP: "198.51.100.11", kubeconfig: "k", wantErr: "--node-name"},
		{name: "no such kubeconfig", nodeName: "node1", nodeIP: "198.51.100.11", kubeconfig: "/nonexistent/kubeconfig", wantErr: "--kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewConfig()
			cfg.NodeName, cfg.NodeIP, cfg.Proxy.Kubeconfig = tc.nodeName, tc.nodeIP, tc.kubeconfig
			s, err := StartServices(context.Background(), cfg)
			if err == nil {
				s.Close()
				t.Fatalf("StartServices: no error, want %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("StartServices: %v, want %q", err, tc.wantErr)
			}
		})
	}
}
