package openapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kubectlDirs are where this image's prebuilt kubectl binaries live (KUBECTL-COMPAT.md §11).
var kubectlDirs = []string{"/usr/lib/google-cloud-sdk/bin/"}

func findKubectl(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range kubectlDirs {
		if p, err := exec.LookPath(d + name); err == nil {
			return p
		}
	}
	return ""
}

const validService = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
`

// TestHandler_RealKubectl runs the prebuilt kubectl binaries, when present, against discovery and
// OpenAPI: api-resources (aggregated or legacy discovery) and explain over OpenAPI v3 and,
// forced, v2 protobuf.
func TestHandler_RealKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs external kubectl binaries")
	}
	url, _ := newAPIServerURL(t)
	tests := []struct {
		name    string
		binary  string
		args    []string
		stdin   string
		wantErr bool
		want    []string
	}{
		{name: "1.27 api-resources", binary: "kubectl.1.27", args: []string{"api-resources"}, want: []string{"services", "svc", "deployments", "deploy", "endpointslices", "discovery.k8s.io/v1"}},
		{name: "1.27 explain v3", binary: "kubectl.1.27", args: []string{"explain", "svc.spec.ports.port"}, want: []string{"The port that will be exposed by this service."}},
		{name: "1.27 explain v2", binary: "kubectl.1.27", args: []string{"explain", "svc.spec.ports.port", "--output=plaintext-openapiv2"}, want: []string{"The port that will be exposed by this service."}},
		{name: "1.33 api-resources", binary: "kubectl.1.33", args: []string{"api-resources", "--categories=all", "-o", "name"}, want: []string{"pods", "services", "deployments.apps", "replicasets.apps"}},
		{name: "1.33 explain deploy", binary: "kubectl.1.33", args: []string{"explain", "deploy.spec.replicas"}, want: []string{"replicas", "<integer>"}},
		// kubectl finds fieldValidation on the PATCH operations, so it leaves validation to the
		// server (sending fieldValidation=Strict) instead of validating client-side.
		{name: "1.33 client-side validation ok", binary: "kubectl.1.33", args: []string{"create", "--dry-run=client", "--validate=strict", "-f", "-"},
			stdin: validService, want: []string{"service/web created (dry run)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := findKubectl(tt.binary)
			if bin == "" {
				t.Skipf("%s not installed", tt.binary)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append([]string{"--server=" + url, "--cache-dir=" + t.TempDir(), "--kubeconfig=/dev/null"}, tt.args...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr {
				t.Fatalf("%s %v: err = %v, want error %v\n%s", tt.binary, tt.args, err, tt.wantErr, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
