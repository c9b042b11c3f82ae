package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"kubesvc/internal/agent/dnsconfig"
)

func TestDNSConfig_FlagsAndValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    DNSConfig
		wantErr string
	}{
		{name: "defaults", want: DNSConfig{}},
		{name: "upstreams", args: []string{"--dns-upstream=198.51.100.1,198.51.100.2:5353", "--dns-upstream=[2001:db8::1]:53"},
			want: DNSConfig{Upstreams: []string{"198.51.100.1", "198.51.100.2:5353", "[2001:db8::1]:53"}}},
		{name: "disabled", args: []string{"--disable-dns"}, want: DNSConfig{Disable: true}},
		{name: "metrics off, pods verified", args: []string{"--dns-metrics-port=-1", "--dns-pods=verified"},
			want: DNSConfig{MetricsPort: -1, PodMode: "verified"}},
		{name: "upstream host name", args: []string{"--dns-upstream=dns.example"}, wantErr: `--dns-upstream: "dns.example" is not ip or ip:port`},
		{name: "bad pod mode", args: []string{"--dns-pods=all"}, wantErr: `--dns-pods "all"`},
		{name: "metrics port out of range", args: []string{"--dns-metrics-port=70000"}, wantErr: "--dns-metrics-port 70000 out of range"},
		// Where the DNS listens and whether it publishes its kube-dns slice (services-only mode).
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
}

// TestDNSConfig_Upstreams checks the default upstreams: the node resolver's nameservers,
// without the addresses of the cluster DNS itself (a loop), ports added.
func TestDNSConfig_Upstreams(t *testing.T) {
	a := &Agent{dns: dnsconfig.Config{ClusterDNS: []string{"10.96.0.10"},
		Host: dnsconfig.Resolv{Nameservers: []string{"203.0.113.53", "10.96.0.10", "10.244.0.1", "127.0.0.53", "2001:db8::53", "bogus"}}}}
	gw := netip.MustParseAddr("10.244.0.1")
	got := a.dnsUpstreams(DNSConfig{}, gw)
	want := []string{"203.0.113.53:53", "127.0.0.53:53", "[2001:db8::53]:53"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("upstreams (-want +got):\n%s", diff)
	}
	if got := a.dnsUpstreams(DNSConfig{Upstreams: []string{"198.51.100.1:5353"}}, gw); !cmp.Equal(got, []string{"198.51.100.1:5353"}) {
		t.Fatalf("--dns-upstream: %v", got)
	}
}

// TestDNSConfig_File checks that the --config file's dns object fills what flags left unset.
func TestDNSConfig_File(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(file, []byte("dns:\n  upstreams: [198.51.100.9]\n  metricsPort: 19153\n  podMode: disabled\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{ConfigFile: file}}
	c := DNSConfig{PodMode: "verified"}
	if err := a.loadDNSFile(&c); err != nil {
		t.Fatal(err)
	}
	want := DNSConfig{Upstreams: []string{"198.51.100.9"}, MetricsPort: 19153, PodMode: "verified"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("config (-want +got):\n%s", diff)
	}
	// The file must also pass the strict parse of the whole agent config.
	full := NewConfig()
	full.ConfigFile = file
	if err := full.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
}
