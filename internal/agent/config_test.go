package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"kubesvc/internal/agent/images"
)

func TestConfig_LoadAndValidate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(file, []byte(`
server: https://198.51.100.1:6443
token: from-file
nodeName: file-node
images:
- name: nginx
  entrypoint: [/usr/sbin/nginx]
  cmd: ["-g", "daemon off;"]
labels:
  zone: a
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{name: "file fills unset flags", args: []string{"--config", file, "--token", "from-flag"}, check: func(t *testing.T, c *Config) {
			if c.Server != "https://198.51.100.1:6443" || c.Token != "from-flag" || c.NodeName != "file-node" || c.Labels["zone"] != "a" {
				t.Fatalf("merged config %+v", c)
			}
			want := []images.Entry{{Name: "nginx", Image: images.Image{Entrypoint: []string{"/usr/sbin/nginx"}, Cmd: []string{"-g", "daemon off;"}}}}
			if diff := cmp.Diff(want, c.Images); diff != "" {
				t.Fatalf("images (-want +got):\n%s", diff)
			}
		}},
		{name: "flags alone", args: []string{"--server", "https://x:6443", "--token", "t", "--container-backoff", "1s", "--node-lease-duration-seconds", "8"}, check: func(t *testing.T, c *Config) {
			if c.BackoffInitial != time.Second || c.LeaseDurationSeconds != 8 || c.KubeletPort != DefaultKubeletPort {
				t.Fatalf("config %+v", c)
			}
		}},
		{name: "missing server and token", args: nil, wantErr: "--server is required"},
		{name: "http server", args: []string{"--server", "http://x:6443", "--token", "t"}, wantErr: "must be an https:// URL"},
		{name: "bad node name", args: []string{"--server", "https://x", "--token", "t", "--node-name", "Bad_Name"}, wantErr: "--node-name"},
		{name: "bad node ip", args: []string{"--server", "https://x", "--token", "t", "--node-ip", "300.1.1.1"}, wantErr: "--node-ip"},
		{name: "back-off order", args: []string{"--server", "https://x", "--token", "t", "--container-backoff", "10s", "--container-backoff-max", "1s"}, wantErr: "--container-backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			c.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Load()
			if err == nil {
				err = c.Validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// --node-ip takes one address or a dual-stack pair, as the kubelet's (PX-02: the proxy serves
// the families given).
func TestParseNodeIPs(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "198.51.100.11", want: "[198.51.100.11]"},
		{in: "198.51.100.11,2001:db8:1::11", want: "[198.51.100.11 2001:db8:1::11]"},
		{in: "2001:db8:1::11, 198.51.100.11", want: "[2001:db8:1::11 198.51.100.11]"},
		{in: "::ffff:198.51.100.11", want: "[198.51.100.11]"},
		{in: "198.51.100.11,198.51.100.12", err: "one IPv4 and one IPv6"},
		{in: "198.51.100.11,2001:db8:1::11,2001:db8:1::12", err: "one IPv4 and one IPv6"},
		{in: "127.0.0.1", err: "cannot be a node address"},
		{in: "::", err: "cannot be a node address"},
		{in: "node1", err: "unable to parse IP"},
		{in: "", err: "unable to parse IP"},
	} {
		got, err := ParseNodeIPs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseNodeIPs(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("ParseNodeIPs(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
