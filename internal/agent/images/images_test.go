package images

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ name, in, repo, tag string }{
		{name: "official", in: "busybox", repo: "docker.io/library/busybox", tag: "latest"},
		{name: "user repo with tag", in: "luksa/kubia:v2", repo: "docker.io/luksa/kubia", tag: "v2"},
		{name: "registry with port", in: "localhost:5000/app:1", repo: "localhost:5000/app", tag: "1"},
		{name: "k8s registry", in: "registry.k8s.io/e2e-test-images/agnhost:2.53", repo: "registry.k8s.io/e2e-test-images/agnhost", tag: "2.53"},
		{name: "digest", in: "luksa/kubia@sha256:abc", repo: "docker.io/luksa/kubia", tag: "sha256:abc"},
		{name: "index.docker.io", in: "index.docker.io/luksa/kubia", repo: "docker.io/luksa/kubia", tag: "latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, tag, err := Normalize(tc.in)
			if err != nil || repo != tc.repo || tag != tc.tag {
				t.Fatalf("Normalize(%q) = %q %q %v, want %q %q", tc.in, repo, tag, err, tc.repo, tc.tag)
			}
		})
	}
}

func TestCatalog_Command(t *testing.T) {
	c, err := New("/kubesvc", []Entry{
		{Name: "nginx", Image: Image{Entrypoint: []string{"/usr/sbin/nginx"}, Cmd: []string{"-g", "daemon off;"}}},
		{Name: "luksa/kubia:custom", Image: Image{Entrypoint: []string{"/bin/custom"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		image         string
		command, args []string
		want          []string
		unknown       bool
	}{
		{name: "kubia", image: "luksa/kubia", want: []string{"/kubesvc", "toolbox", "kubia", "--variant", "v1"}},
		{name: "kubia any tag", image: "docker.io/luksa/kubia:v1", want: []string{"/kubesvc", "toolbox", "kubia", "--variant", "v1"}},
		{name: "kubia v2", image: "luksa/kubia:v2", want: []string{"/kubesvc", "toolbox", "kubia", "--variant", "v2"}},
		{name: "exact config entry wins", image: "luksa/kubia:custom", want: []string{"/bin/custom"}},
		{name: "agnhost args", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: []string{"netexec", "--http-port=8080"}, want: []string{"/kubesvc", "toolbox", "agnhost", "netexec", "--http-port=8080"}},
		{name: "agnhost binary path", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", command: []string{"/agnhost", "serve-hostname"}, want: []string{"/kubesvc", "toolbox", "agnhost", "serve-hostname"}},
		{name: "pause", image: "registry.k8s.io/pause:3.10", want: []string{"/kubesvc", "toolbox", "pause"}},
		{name: "config entry cmd", image: "nginx:1.27", want: []string{"/usr/sbin/nginx", "-g", "daemon off;"}},
		{name: "config entry args replace cmd", image: "nginx", args: []string{"-t"}, want: []string{"/usr/sbin/nginx", "-t"}},
		{name: "unknown image with command runs it", image: "busybox", command: []string{"sh", "-c"}, args: []string{"echo hi"}, want: []string{"sh", "-c", "echo hi"}},
		{name: "unknown image without command", image: "busybox", unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := c.Command(tc.image, tc.command, tc.args)
			if ok == tc.unknown {
				t.Fatalf("known = %v, want %v", ok, !tc.unknown)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("argv (-want +got):\n%s", diff)
			}
		})
	}
	if msg := ErrNotInCatalog("busybox"); !strings.Contains(msg, "not in this node's image catalog") {
		t.Fatalf("message %q", msg)
	}
}
