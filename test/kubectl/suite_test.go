package kubectl_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/servertest"
)

// step is one kubectl invocation of the suite and what it must print.
type step struct {
	name  string
	args  []string
	stdin string
	env   []string
	// code is the wanted exit code.
	code int
	// stdout, when set, is the exact output (surrounding white space ignored).
	stdout string
	// contains are substrings of stdout; stderr substrings of stderr.
	contains []string
	stderr   []string
	// matches are multi-line regular expressions stdout must match.
	matches []string
	// header, when set, makes stdout a table with exactly these header fields in kubectl's
	// column layout; rows then checks the data rows.
	header []string
	rows   func(t *testing.T, rows [][]string)
	// check examines stdout; after checks the server's state with client-go.
	check func(t *testing.T, stdout string)
	after func(t *testing.T)
	// run replaces the invocation for steps that are not one command to completion.
	run func(t *testing.T, k *kubectl)
}

func testdata(name string) string { return filepath.Join("testdata", name) }

// TestKubectl runs the suite with every kubectl build against one in-process server; each
// build works in its own namespace with its own discovery cache.
func TestKubectl(t *testing.T) {
	s := servertest.StartTestServer(t)
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range binaries() {
		t.Run(bin.name, func(t *testing.T) {
			if bin.skip != "" {
				t.Skip(bin.skip)
			}
			ns := "kc-" + strings.ReplaceAll(bin.name, ".", "-")
			if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace %s: %v", ns, err)
			}
			k := newKubectl(t, bin, s, ns)
			for _, st := range suite(t, cs, ns) {
				t.Run(st.name, func(t *testing.T) { runStep(t, k, st) })
			}
		})
	}
}

func runStep(t *testing.T, k *kubectl, st step) {
	if st.run != nil {
		st.run(t, k)
		return
	}
	r := k.run(t, st.stdin, st.env, st.args...)
	if r.code != st.code {
		t.Fatalf("kubectl %s: exit code %d, want %d\n%s", strings.Join(st.args, " "), r.code, st.code, r)
	}
	if st.stdout != "" && strings.TrimSpace(r.stdout) != st.stdout {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr: %s", r.stdout, st.stdout, r.stderr)
	}
	for _, c := range st.contains {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("stdout does not contain %q:\n%s\nstderr: %s", c, r.stdout, r.stderr)
		}
	}
	for _, c := range st.stderr {
		if !strings.Contains(r.stderr, c) {
			t.Errorf("stderr does not contain %q:\n%s", c, r.stderr)
		}
	}
	for _, m := range st.matches {
		if !regexp.MustCompile(m).MatchString(r.stdout) {
			t.Errorf("stdout does not match %s:\n%s", m, r.stdout)
		}
	}
	if st.header != nil {
		rows := checkTable(t, r.stdout, st.header)
		if st.rows != nil {
			st.rows(t, rows)
		}
	}
	if st.check != nil {
		st.check(t, r.stdout)
	}
	if st.after != nil {
		st.after(t)
	}
}

// suite returns the steps, in order; later steps build on the state earlier ones left.
func suite(t *testing.T, cs kubernetes.Interface, ns string) []step {
	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nexec sed -i -e 's/tier: frontend/tier: edited/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	created := ns + "-created"
	var webConfigRV string
	return []step{
		{
			name: "api-resources", args: []string{"api-resources"},
			header: []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"},
			check: func(t *testing.T, out string) {
				for _, want := range []string{"services svc v1 true Service", "pods po v1 true Pod", "deployments deploy apps/v1 true Deployment", "namespaces ns v1 false Namespace"} {
					if !hasLineFields(out, want) {
						t.Errorf("no line %q in:\n%s", want, out)
					}
				}
			},
		},
		{name: "create namespace", args: []string{"create", "namespace", created}, stdout: "namespace/" + created + " created"},
		{
			name: "apply multi-document file", args: []string{"apply", "-f", testdata("app.yaml")},
			stdout: "service/web created\ndeployment.apps/web created\nconfigmap/web-config created",
		},
		{
			name: "re-apply is unchanged", args: []string{"apply", "-f", testdata("app.yaml")},
			stdout: "service/web unchanged\ndeployment.apps/web unchanged\nconfigmap/web-config unchanged",
		},
		{
			name: "apply a change is configured", args: []string{"apply", "-f", testdata("app-v2.yaml")},
			stdout: "service/web unchanged\ndeployment.apps/web unchanged\nconfigmap/web-config configured",
		},
		{
			name: "create existing is AlreadyExists", args: []string{"create", "-f", testdata("app.yaml")},
			code: 1, stderr: []string{`Error from server (AlreadyExists): error when creating "testdata/app.yaml": services "web" already exists`},
		},
		{
			name: "create invalid is Invalid", args: []string{"create", "-f", "-"}, stdin: invalidService,
			code: 1, stderr: []string{`The Service "bad" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`},
		},
		{
			name: "unknown field fails strict validation", args: []string{"create", "-f", "-"}, stdin: unknownFieldService,
			code: 1, stderr: []string{`Error from server (BadRequest): error when creating "STDIN": Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.portz"`},
		},
		{
			name: "unknown field with --validate=warn", args: []string{"create", "-f", "-", "--validate=warn"}, stdin: unknownFieldService,
			stdout: "service/strict created", stderr: []string{`Warning: unknown field "spec.portz"`},
		},
		{name: "create deployment (protobuf body)", args: []string{"create", "deployment", "pb", "--image=nginx:1.27"}, stdout: "deployment.apps/pb created"},
		{
			name: "get svc", args: []string{"get", "svc"},
			header: []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"},
			rows: func(t *testing.T, rows [][]string) {
				r := row(t, rows, "web")
				if r[1] != "ClusterIP" || r[3] != "<none>" || r[4] != "80/TCP" || !isAge(r[5]) {
					t.Errorf("row %q, want web ClusterIP <ip> <none> 80/TCP <age>", r)
				}
				if ip, err := netip.ParseAddr(r[2]); err != nil || !netip.MustParsePrefix("10.96.0.0/12").Contains(ip) {
					t.Errorf("CLUSTER-IP %q is not an address of the service CIDR 10.96.0.0/12", r[2])
				}
			},
		},
		{
			name: "get svc -o wide", args: []string{"get", "svc", "web", "-o", "wide"},
			header: []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"},
			rows: func(t *testing.T, rows [][]string) {
				if r := row(t, rows, "web"); r[6] != "app=web" {
					t.Errorf("SELECTOR %q, want app=web", r[6])
				}
			},
		},
		{
			name: "get deploy", args: []string{"get", "deploy"},
			header: []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
			rows: func(t *testing.T, rows [][]string) {
				if r := row(t, rows, "web"); !strings.HasSuffix(r[1], "/1") {
					t.Errorf("READY %q, want x/1", r[1])
				}
			},
		},
		{
			name: "get cm", args: []string{"get", "cm", "web-config"},
			header: []string{"NAME", "DATA", "AGE"},
			rows: func(t *testing.T, rows [][]string) {
				if r := row(t, rows, "web-config"); r[1] != "1" {
					t.Errorf("DATA %q, want 1", r[1])
				}
			},
		},
		{
			name: "get -o yaml", args: []string{"get", "svc", "web", "-o", "yaml"},
			contains: []string{"apiVersion: v1\n", "kind: Service\n", "  name: web\n", "  namespace: " + ns + "\n", "    port: 80\n", "    targetPort: 8080\n"},
		},
		{
			name: "get -o json", args: []string{"get", "svc", "web", "-o", "json"},
			check: func(t *testing.T, out string) {
				var svc corev1.Service
				if err := json.Unmarshal([]byte(out), &svc); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				if svc.Kind != "Service" || svc.Name != "web" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
					t.Errorf("decoded %s %s ports %+v", svc.Kind, svc.Name, svc.Spec.Ports)
				}
			},
		},
		{name: "get -o jsonpath", args: []string{"get", "svc", "web", "-o", "jsonpath={.spec.ports[0].port}/{.spec.ports[0].protocol}"}, stdout: "80/TCP"},
		{name: "get -l -o name", args: []string{"get", "svc,deploy", "-l", "app=web", "-o", "name"}, stdout: "service/web\ndeployment.apps/web"},
		{
			name: "describe svc", args: []string{"describe", "svc", "web"},
			matches: []string{
				`(?m)^Name:\s+web$`, `(?m)^Namespace:\s+` + ns + `$`, `(?m)^Labels:\s+app=web$`, `(?m)^\s+tier=frontend$`,
				`(?m)^Selector:\s+app=web$`, `(?m)^Type:\s+ClusterIP$`, `(?m)^IP:\s+10\.`, `(?m)^Port:\s+http\s+80/TCP$`,
				`(?m)^TargetPort:\s+8080/TCP$`, `(?m)^Events:\s+<none>$`,
			},
		},
		{name: "edit", args: []string{"edit", "svc", "web"}, env: []string{"KUBE_EDITOR=" + editor, "EDITOR=" + editor}, stdout: "service/web edited"},
		{name: "edit took effect", args: []string{"get", "svc", "web", "-o", "jsonpath={.metadata.labels.tier}"}, stdout: "edited"},
		{name: "patch strategic merge", args: []string{"patch", "svc", "web", "-p", `{"metadata":{"labels":{"patched":"smp"}}}`}, stdout: "service/web patched"},
		{name: "patch without change", args: []string{"patch", "svc", "web", "-p", `{"metadata":{"labels":{"patched":"smp"}}}`}, stdout: "service/web patched (no change)"},
		{name: "patch merge", args: []string{"patch", "svc", "web", "--type=merge", "-p", `{"metadata":{"labels":{"merge":"yes"}}}`}, stdout: "service/web patched"},
		{name: "patch json", args: []string{"patch", "svc", "web", "--type=json", "-p", `[{"op":"add","path":"/metadata/labels/jp","value":"yes"}]`}, stdout: "service/web patched"},
		{name: "label", args: []string{"label", "svc", "web", "env=test"}, stdout: "service/web labeled"},
		{name: "annotate", args: []string{"annotate", "svc", "web", "note=hello"}, stdout: "service/web annotated"},
		{
			name:   "patches, label and annotate took effect",
			args:   []string{"get", "svc", "web", "-o", "jsonpath={.metadata.labels.patched},{.metadata.labels.merge},{.metadata.labels.jp},{.metadata.labels.env},{.metadata.annotations.note}"},
			stdout: "smp,yes,yes,test,hello",
		},
		{name: "scale", args: []string{"scale", "deploy", "web", "--replicas=3"}, stdout: "deployment.apps/web scaled"},
		{name: "scale took effect", args: []string{"get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"}, stdout: "3"},
		{name: "get -w", run: watchStep(cs, ns)},
		{
			name: "explain", args: []string{"explain", "svc.spec.ports"},
			matches: []string{`(?m)^KIND:\s+Service$`, `(?m)^VERSION:\s+v1$`, `(?m)^FIELD:\s+ports\s+<\[\]ServicePort>$`, `(?m)^\s+targetPort\s+<IntOrString>$`},
		},
		{
			name: "create --dry-run=server stores nothing", args: []string{"create", "-f", testdata("dry.yaml"), "--dry-run=server"},
			stdout: "configmap/dry created (server dry run)",
			after: func(t *testing.T) {
				if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("get dry: %v, want NotFound", err)
				}
				cm, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "web-config", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				webConfigRV = cm.ResourceVersion
			},
		},
		{
			name: "diff does not mutate", args: []string{"diff", "-f", testdata("app-diff.yaml")},
			code: 1, contains: []string{"-  greeting: hi\n", "+  greeting: diff\n"},
			after: func(t *testing.T) {
				cm, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "web-config", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if cm.Data["greeting"] != "hi" || cm.ResourceVersion != webConfigRV {
					t.Errorf("after diff: greeting %q rv %s, want hi and rv %s", cm.Data["greeting"], cm.ResourceVersion, webConfigRV)
				}
			},
		},
		{name: "create pods", args: []string{"apply", "-f", testdata("pods.yaml")}, stdout: "pod/p1 created\npod/p2 created"},
		{
			name: "get po", args: []string{"get", "po"},
			header: []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"},
			rows: func(t *testing.T, rows [][]string) {
				for _, name := range []string{"p1", "p2"} {
					if r := row(t, rows, name); r[1] != "0/1" || r[2] != "Pending" || r[3] != "0" {
						t.Errorf("row %q, want %s 0/1 Pending 0 <age>", r, name)
					}
				}
			},
		},
		{
			name: "delete po --all", args: []string{"delete", "po", "--all"},
			contains: []string{`pod "p1" deleted`, `pod "p2" deleted`},
			after: func(t *testing.T) {
				// The Deployments' ReplicaSets recreate their pods, as in Kubernetes; every
				// pod that remains must be a new one owned by a ReplicaSet.
				l, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range l.Items {
					if p.Name == "p1" || p.Name == "p2" || metav1.GetControllerOf(&p) == nil {
						t.Errorf("pod %s (owner %v) still exists after delete --all", p.Name, metav1.GetControllerOf(&p))
					}
				}
			},
		},
		{name: "delete", args: []string{"delete", "cm", "web-config"}, contains: []string{`configmap "web-config" deleted`}},
		{
			name: "get deleted is NotFound", args: []string{"get", "cm", "web-config"},
			code: 1, stderr: []string{`Error from server (NotFound): configmaps "web-config" not found`},
		},
		{
			name: "delete -f", args: []string{"delete", "-f", testdata("app.yaml"), "--ignore-not-found"},
			contains: []string{`service "web" deleted`, `deployment.apps "web" deleted`},
		},
	}
}

// watchStep runs `kubectl get cm -w`, creates a ConfigMap and waits for its line.
func watchStep(cs kubernetes.Interface, ns string) func(t *testing.T, k *kubectl) {
	return func(t *testing.T, k *kubectl) {
		lines, stop := k.stream(t, "get", "cm", "-w")
		stopped := false
		defer func() {
			if !stopped {
				stop()
			}
		}()
		header := nextLine(t, lines, 60*time.Second, "the table header", func(l string) bool { return strings.HasPrefix(l, "NAME") })
		if got := strings.Fields(header); strings.Join(got, " ") != "NAME DATA AGE" {
			t.Errorf("header %q, want NAME DATA AGE", header)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Data: map[string]string{"a": "b", "c": "d"}}
		// The header comes with the initial list, so this create is newer than the list's
		// resourceVersion the watch starts from: it shows however late the watch begins.
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		l := nextLine(t, lines, 30*time.Second, "the line of the new ConfigMap", func(l string) bool { return strings.HasPrefix(l, "watched ") })
		if f := strings.Fields(l); len(f) != 3 || f[1] != "2" {
			t.Errorf("line %q, want watched 2 <age>", l)
		}
		stopped = true
		r := stop()
		if strings.Contains(r.stderr, "error") {
			t.Errorf("kubectl get -w stderr: %s", r.stderr)
		}
	}
}

const invalidService = `apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
  - port: 0
    targetPort: 8080
`

const unknownFieldService = `apiVersion: v1
kind: Service
metadata:
  name: strict
spec:
  portz: 1
  ports:
  - port: 80
`

func hasLineFields(out, want string) bool {
	w := strings.Fields(want)
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(w, " ") {
			return true
		}
	}
	return false
}

var ageRE = regexp.MustCompile(`^(\d+[smhdy])+$|^<unknown>$|^<invalid>$`)

func isAge(s string) bool { return ageRE.MatchString(s) }
