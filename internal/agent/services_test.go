package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// TestDNSConfig_BindAddressAndPublication checks the flags of where the DNS listens and
// whether it publishes its kube-dns slice, from flags and from the --config file.
func TestDNSConfig_BindAddressAndPublication(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    DNSConfig
		wantErr string
	}{
		{name: "bind address and unpublished", args: []string{"--dns-bind-address=169.254.20.10", "--dns-unpublished"},
			want: DNSConfig{BindAddress: "169.254.20.10", Unpublished: true}},
		{name: "IPv6 bind address", args: []string{"--dns-bind-address=2001:db8::53"}, want: DNSConfig{BindAddress: "2001:db8::53"}},
		{name: "bind address not an IP", args: []string{"--dns-bind-address=node1"}, wantErr: "--dns-bind-address"},
		{name: "bind address with a port", args: []string{"--dns-bind-address=198.51.100.1:53"}, wantErr: "--dns-bind-address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c DNSConfig
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			c.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c); diff != "" {
				t.Fatalf("config (-want +got):\n%s", diff)
			}
		})
	}
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
