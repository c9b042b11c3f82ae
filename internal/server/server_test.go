package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
)

// strategiesPending is the skip message of cases that need the per-kind registry strategies.
const strategiesPending = "registry strategies are not wired yet: kinds() in internal/server/wiring.go returns nil"

func skipUntilStrategiesWired(t *testing.T) {
	t.Helper()
	if !server.StrategiesWired() {
		t.Skip(strategiesPending)
	}
}

// env is one started server plus clients for it.
type env struct {
	s  *server.Server
	cs kubernetes.Interface
	// warnings collects the Warning headers cs received.
	warnings *warningRecorder
	// requests records the method, URL and Content-Type of every request cs sent.
	requests *requestRecorder
}

func newEnv(t *testing.T, opts ...servertest.Option) *env {
	t.Helper()
	// These are API tests: the workload controllers and the scheduler would write the tests'
	// deployments and pods between their reads and writes. opts may enable them again.
	opts = append([]servertest.Option{servertest.WithControllers("*", "-replicaset", "-replicationcontroller", "-deployment", "-scheduler", "-nodelifecycle")}, opts...)
	s := servertest.StartTestServer(t, opts...)
	return envFor(t, s)
}

func envFor(t *testing.T, s *server.Server) *env {
	t.Helper()
	e := &env{s: s, warnings: &warningRecorder{}, requests: &requestRecorder{}}
	cfg := rest.CopyConfig(s.RESTConfig)
	cfg.WarningHandler = e.warnings
	cfg.Wrap(e.requests.wrap)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	e.cs = cs
	return e
}

// namespace creates a namespace for one test and returns its name.
func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := e.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns and forgets the warnings received so far.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

type recordedRequest struct {
	Method, URL, ContentType string
}

type requestRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

func (r *requestRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		r.reqs = append(r.reqs, recordedRequest{Method: req.Method, URL: req.URL.String(), ContentType: req.Header.Get("Content-Type")})
		r.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (r *requestRecorder) all() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Objects used across tests; valid for kube's strategies so the tests keep passing once the
// registry strategies are wired.

func newService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

func newConfigMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Data:       map[string]string{"key": "value"},
	}
}

func newPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
}

// object is what the generic CRUD test needs of a typed object.
type object interface {
	runtime.Object
	metav1.Object
}

// typedClient is the subset of a client-go typed resource client the CRUD test uses.
type typedClient[T object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// crud creates obj, reads it back, lists, updates and patches it three ways, and deletes it.
func crud[T object, L runtime.Object](t *testing.T, c typedClient[T, L], obj T) {
	ctx := t.Context()
	name := obj.GetName()
	created, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if ts := created.GetCreationTimestamp(); created.GetUID() == "" || created.GetResourceVersion() == "" || ts.IsZero() {
		t.Fatalf("create: system metadata missing: uid=%q rv=%q created=%v", created.GetUID(), created.GetResourceVersion(), created.GetCreationTimestamp())
	}
	got, err := c.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetUID() != created.GetUID() || got.GetResourceVersion() != created.GetResourceVersion() {
		t.Fatalf("get: uid/rv %s/%s, want %s/%s", got.GetUID(), got.GetResourceVersion(), created.GetUID(), created.GetResourceVersion())
	}
	list, err := c.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if names := itemNames(t, list); !slices.Contains(names, name) {
		t.Fatalf("list: %v does not contain %s", names, name)
	}

	got.SetLabels(map[string]string{"app": name, "step": "update"})
	updated, err := c.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.GetResourceVersion() == got.GetResourceVersion() {
		t.Errorf("update: resourceVersion did not change (%s)", updated.GetResourceVersion())
	}
	if updated.GetLabels()["step"] != "update" {
		t.Errorf("update: labels %v", updated.GetLabels())
	}

	patches := []struct {
		name  string
		pt    types.PatchType
		data  string
		label string
	}{
		{name: "strategic merge", pt: types.StrategicMergePatchType, data: `{"metadata":{"labels":{"smp":"yes"}}}`, label: "smp"},
		{name: "merge", pt: types.MergePatchType, data: `{"metadata":{"labels":{"merge":"yes"}}}`, label: "merge"},
		{name: "json", pt: types.JSONPatchType, data: `[{"op":"add","path":"/metadata/labels/json","value":"yes"}]`, label: "json"},
	}
	want := map[string]string{"app": name, "step": "update"}
	for _, p := range patches {
		patched, err := c.Patch(ctx, name, p.pt, []byte(p.data), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("%s patch: %v", p.name, err)
		}
		want[p.label] = "yes"
		for k, v := range want {
			if patched.GetLabels()[k] != v {
				t.Errorf("%s patch: labels %v, want %s=%s", p.name, patched.GetLabels(), k, v)
			}
		}
	}

	if err := c.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

func itemNames(t *testing.T, list runtime.Object) []string {
	t.Helper()
	var names []string
	switch l := list.(type) {
	case *corev1.ServiceList:
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
	case *corev1.ConfigMapList:
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
	case *corev1.PodList:
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
	case *appsv1.DeploymentList:
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
	default:
		t.Fatalf("itemNames: unexpected list type %T", list)
	}
	return names
}

func TestServer_CRUD(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "crud")
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{name: "services", run: func(t *testing.T) { crud(t, e.cs.CoreV1().Services(ns), newService("web")) }},
		{name: "configmaps", run: func(t *testing.T) { crud(t, e.cs.CoreV1().ConfigMaps(ns), newConfigMap("cfg")) }},
		{name: "pods", run: func(t *testing.T) { crud(t, e.cs.CoreV1().Pods(ns), newPod("pod", "")) }},
		{name: "deployments", run: func(t *testing.T) { crud(t, e.cs.AppsV1().Deployments(ns), newDeployment("deploy", 1)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}

	t.Run("typed clients send protobuf", func(t *testing.T) {
		var posts []recordedRequest
		for _, r := range e.requests.all() {
			if r.Method == http.MethodPost {
				posts = append(posts, r)
			}
		}
		if len(posts) == 0 {
			t.Fatal("no POST recorded")
		}
		for _, r := range posts {
			if r.ContentType != "application/vnd.kubernetes.protobuf" {
				t.Errorf("POST %s: Content-Type %q, want protobuf", r.URL, r.ContentType)
			}
		}
	})

	t.Run("services are defaulted and get a ClusterIP", func(t *testing.T) {
		skipUntilStrategiesWired(t)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "x"}, Ports: []corev1.ServicePort{{Port: 80}}},
		}
		got, err := e.cs.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sp := got.Spec
		if sp.Type != corev1.ServiceTypeClusterIP || sp.SessionAffinity != corev1.ServiceAffinityNone ||
			sp.Ports[0].Protocol != corev1.ProtocolTCP || sp.Ports[0].TargetPort != intstr.FromInt32(80) {
			t.Errorf("defaults: type %q sessionAffinity %q protocol %q targetPort %v", sp.Type, sp.SessionAffinity, sp.Ports[0].Protocol, sp.Ports[0].TargetPort)
		}
		ip, err := netip.ParseAddr(sp.ClusterIP)
		if err != nil || !netip.MustParsePrefix("10.96.0.0/12").Contains(ip) {
			t.Errorf("clusterIP %q is not an address of the service CIDR 10.96.0.0/12", sp.ClusterIP)
		}
		if !slices.Equal(sp.ClusterIPs, []string{sp.ClusterIP}) || !slices.Equal(sp.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol}) ||
			sp.IPFamilyPolicy == nil || *sp.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Errorf("clusterIPs %v ipFamilies %v ipFamilyPolicy %v, want [clusterIP] [IPv4] SingleStack", sp.ClusterIPs, sp.IPFamilies, sp.IPFamilyPolicy)
		}
	})

	t.Run("strategic merge patch merges service ports by port", func(t *testing.T) {
		ctx := t.Context()
		if _, err := e.cs.CoreV1().Services(ns).Create(ctx, newService("smp"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		patch := `{"spec":{"ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":8443}]}}`
		svc, err := e.cs.CoreV1().Services(ns).Patch(ctx, "smp", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ports []int32
		for _, p := range svc.Spec.Ports {
			ports = append(ports, p.Port)
		}
		if !slices.Equal(ports, []int32{443, 80}) {
			t.Errorf("ports after SMP %v, want [443 80]", ports)
		}
		// A merge patch replaces the list.
		svc, err = e.cs.CoreV1().Services(ns).Patch(ctx, "smp", types.MergePatchType, []byte(`{"spec":{"ports":[{"name":"http","port":81,"protocol":"TCP"}]}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 81 {
			t.Errorf("ports after merge patch %+v, want only 81", svc.Spec.Ports)
		}
	})

	t.Run("strategic merge patch merges containers by name", func(t *testing.T) {
		ctx := t.Context()
		if _, err := e.cs.AppsV1().Deployments(ns).Create(ctx, newDeployment("smp", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		patch := `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}`
		d, err := e.cs.AppsV1().Deployments(ns).Patch(ctx, "smp", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := d.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Image != "nginx:2" {
			t.Errorf("containers %+v, want one web with nginx:2", c)
		}
	})
}

func TestServer_Errors(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "errors")
	ctx := t.Context()
	svcs := e.cs.CoreV1().Services(ns)
	cms := e.cs.CoreV1().ConfigMaps(ns)

	tests := []struct {
		name string
		// do returns the error the server answered with; check examines it.
		do   func(t *testing.T) error
		code int
		// is is the apierrors predicate the error must satisfy.
		is      func(error) bool
		message string // exact message, if set
		contain string // substring of the message, if set
		after   func(t *testing.T)
	}{
		{
			name: "AlreadyExists",
			do: func(t *testing.T) error {
				if _, err := svcs.Create(ctx, newService("dup"), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				_, err := svcs.Create(ctx, newService("dup"), metav1.CreateOptions{})
				return err
			},
			code: http.StatusConflict, is: apierrors.IsAlreadyExists, message: `services "dup" already exists`,
		},
		{
			name: "Conflict on stale resourceVersion",
			do: func(t *testing.T) error {
				svc, err := svcs.Create(ctx, newService("stale"), metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				fresh := svc.DeepCopy()
				fresh.Labels["v"] = "2"
				if _, err := svcs.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				svc.Labels["v"] = "stale"
				_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
				return err
			},
			code: http.StatusConflict, is: apierrors.IsConflict,
			message: `Operation cannot be fulfilled on services "stale": the object has been modified; please apply your changes to the latest version and try again`,
		},
		{
			name: "NotFound",
			do: func(t *testing.T) error {
				_, err := svcs.Get(ctx, "x", metav1.GetOptions{})
				return err
			},
			code: http.StatusNotFound, is: apierrors.IsNotFound, message: `services "x" not found`,
		},
		{
			name: "NotFound namespace on create",
			do: func(t *testing.T) error {
				_, err := e.cs.CoreV1().ConfigMaps("nope").Create(ctx, newConfigMap("a"), metav1.CreateOptions{})
				return err
			},
			code: http.StatusNotFound, is: apierrors.IsNotFound, message: `namespaces "nope" not found`,
		},
		{
			name: "malformed JSON is 400 and stores nothing",
			do: func(t *testing.T) error {
				return e.cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("configmaps").
					SetHeader("Content-Type", "application/json").
					Body([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"malformed"`)).Do(ctx).Error()
			},
			code: http.StatusBadRequest, is: apierrors.IsBadRequest,
			after: func(t *testing.T) { assertNotFound(t, cms, "malformed") },
		},
		{
			name: "body over 3 MiB is 413",
			do: func(t *testing.T) error {
				cm := newConfigMap("huge")
				cm.Data["big"] = strings.Repeat("x", 3<<20+1)
				_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
				return err
			},
			code: http.StatusRequestEntityTooLarge, is: apierrors.IsRequestEntityTooLargeError,
			after: func(t *testing.T) { assertNotFound(t, cms, "huge") },
		},
		{
			name: "chunked body over 3 MiB is 413",
			do: func(t *testing.T) error {
				body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hugechunked"},"data":{"big":"` + strings.Repeat("x", 3<<20+1) + `"}}`
				// An io.Reader without a known length makes the request chunked.
				return e.cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("configmaps").
					SetHeader("Content-Type", "application/json").
					Body(io.MultiReader(strings.NewReader(body))).Do(ctx).Error()
			},
			code: http.StatusRequestEntityTooLarge, is: apierrors.IsRequestEntityTooLargeError,
			after: func(t *testing.T) { assertNotFound(t, cms, "hugechunked") },
		},
		{
			name: "no credentials is 401",
			do: func(t *testing.T) error {
				anon, err := kubernetes.NewForConfig(rest.AnonymousClientConfig(e.s.RESTConfig))
				if err != nil {
					t.Fatal(err)
				}
				_, err = anon.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
				return err
			},
			code: http.StatusUnauthorized, is: apierrors.IsUnauthorized, message: "Unauthorized",
		},
		{
			name: "unknown field label is 400",
			do: func(t *testing.T) error {
				_, err := svcs.List(ctx, metav1.ListOptions{FieldSelector: "spec.foo=bar"})
				return err
			},
			code: http.StatusBadRequest, is: apierrors.IsBadRequest, message: "field label not supported: spec.foo",
		},
		{
			name: "invalid continue token is 400",
			do: func(t *testing.T) error {
				_, err := svcs.List(ctx, metav1.ListOptions{Limit: 1, Continue: "not-a-token"})
				return err
			},
			code: http.StatusBadRequest, is: apierrors.IsBadRequest, contain: "continue key is not valid",
		},
		{
			name: "Invalid is 422 with field causes",
			do: func(t *testing.T) error {
				skipUntilStrategiesWired(t)
				svc := newService("invalid")
				svc.Spec.Ports[0].Port = 0
				_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
				return err
			},
			code: http.StatusUnprocessableEntity, is: apierrors.IsInvalid,
			contain: `Service "invalid" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
			after: func(t *testing.T) {
				assertNotFound(t, svcs, "invalid")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(t)
			if err == nil {
				t.Fatalf("no error, want %d", tc.code)
			}
			var se apierrors.APIStatus
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a Status", err, err)
			}
			st := se.Status()
			if int(st.Code) != tc.code || !tc.is(err) {
				t.Errorf("got %d %s %q, want %d", st.Code, st.Reason, st.Message, tc.code)
			}
			if tc.message != "" && st.Message != tc.message {
				t.Errorf("message %q, want %q", st.Message, tc.message)
			}
			if tc.contain != "" && !strings.Contains(st.Message, tc.contain) {
				t.Errorf("message %q does not contain %q", st.Message, tc.contain)
			}
			if tc.after != nil {
				tc.after(t)
			}
		})
	}

	t.Run("Invalid causes name the fields", func(t *testing.T) {
		skipUntilStrategiesWired(t)
		svc := newService("invalid2")
		svc.Spec.Ports[0].Port = 0
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "http", Port: 81})
		_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		fields := map[string]bool{}
		var se apierrors.APIStatus
		if errors.As(err, &se) && se.Status().Details != nil {
			for _, c := range se.Status().Details.Causes {
				fields[c.Field] = true
			}
		}
		for _, f := range []string{"spec.ports[0].port", "spec.ports[1].name"} {
			if !fields[f] {
				t.Errorf("causes %v lack field %s (error %v)", fields, f, err)
			}
		}
	})
}

// getter is any typed client's Get.
type getter[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}

func assertNotFound[T any](t *testing.T, c getter[T], name string) {
	t.Helper()
	if _, err := c.Get(t.Context(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get %s: %v, want NotFound (nothing stored)", name, err)
	}
}

func TestServer_Writes(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "writes")
	ctx := t.Context()
	cms := e.cs.CoreV1().ConfigMaps(ns)

	t.Run("generateName", func(t *testing.T) {
		cm := newConfigMap("")
		cm.GenerateName = "gen-"
		got, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.Name, "gen-") || len(got.Name) != len("gen-")+5 || got.GenerateName != "gen-" {
			t.Errorf("name %q generateName %q, want gen-xxxxx", got.Name, got.GenerateName)
		}
		if _, err := cms.Get(ctx, got.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("get generated: %v", err)
		}
	})

	t.Run("dryRun=All stores nothing", func(t *testing.T) {
		dry := []string{metav1.DryRunAll}
		got, err := cms.Create(ctx, newConfigMap("dry"), metav1.CreateOptions{DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "dry" || got.UID == "" {
			t.Errorf("dry-run create returned %s uid %q", got.Name, got.UID)
		}
		assertNotFound(t, cms, "dry")

		stored, err := cms.Create(ctx, newConfigMap("real"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := cms.Patch(ctx, "real", types.MergePatchType, []byte(`{"data":{"key":"patched"}}`), metav1.PatchOptions{DryRun: dry})
		if err != nil || p.Data["key"] != "patched" {
			t.Fatalf("dry-run patch: %v %v", p.Data, err)
		}
		upd := stored.DeepCopy()
		upd.Data["key"] = "updated"
		if _, err := cms.Update(ctx, upd, metav1.UpdateOptions{DryRun: dry}); err != nil {
			t.Fatalf("dry-run update: %v", err)
		}
		if err := cms.Delete(ctx, "real", metav1.DeleteOptions{DryRun: dry}); err != nil {
			t.Fatalf("dry-run delete: %v", err)
		}
		cur, err := cms.Get(ctx, "real", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get after dry runs: %v", err)
		}
		if cur.ResourceVersion != stored.ResourceVersion || cur.Data["key"] != "value" {
			t.Errorf("dry runs changed the object: rv %s→%s data %v", stored.ResourceVersion, cur.ResourceVersion, cur.Data)
		}
	})

	t.Run("fieldValidation", func(t *testing.T) {
		tests := []struct {
			name        string
			directive   string
			body        string
			wantErr     string // exact Status message of a 400
			wantWarning []string
			wantStored  bool
		}{
			{
				name: "Strict unknown field", directive: "Strict",
				body:    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-strict"},"dataz":{"a":"b"}}`,
				wantErr: `ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "dataz"`,
			},
			{
				name: "Strict duplicate field", directive: "Strict",
				body:    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-dup"},"data":{"a":"b"},"data":{"c":"d"}}`,
				wantErr: `ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data"`,
			},
			{
				name: "Warn", directive: "Warn",
				body:        `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-warn"},"dataz":{"a":"b"}}`,
				wantWarning: []string{`unknown field "dataz"`}, wantStored: true,
			},
			{
				name: "default is Warn", directive: "",
				body:        `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-default"},"dataz":{"a":"b"}}`,
				wantWarning: []string{`unknown field "dataz"`}, wantStored: true,
			},
			{
				name: "Ignore", directive: "Ignore",
				body:       `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-ignore"},"dataz":{"a":"b"}}`,
				wantStored: true,
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e.warnings.take()
				req := e.cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("configmaps").
					SetHeader("Content-Type", "application/json").Body([]byte(tc.body))
				if tc.directive != "" {
					req = req.Param("fieldValidation", tc.directive)
				}
				err := req.Do(ctx).Error()
				name := strings.Split(strings.Split(tc.body, `"name":"`)[1], `"`)[0]
				if tc.wantErr != "" {
					if !apierrors.IsBadRequest(err) {
						t.Fatalf("error %v, want 400", err)
					}
					if got := apiMessage(err); got != tc.wantErr {
						t.Errorf("message %q, want %q", got, tc.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if w := e.warnings.take(); !slices.Equal(w, tc.wantWarning) {
					t.Errorf("warnings %q, want %q", w, tc.wantWarning)
				}
				_, err = cms.Get(ctx, name, metav1.GetOptions{})
				if stored := err == nil; stored != tc.wantStored {
					t.Errorf("stored=%v (get: %v), want %v", stored, err, tc.wantStored)
				}
			})
		}
	})

	t.Run("finalizers", func(t *testing.T) {
		cm := newConfigMap("fin")
		cm.Finalizers = []string{"example.com/keep"}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cms.Delete(ctx, "fin", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := cms.Get(ctx, "fin", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get after delete with finalizer: %v", err)
		}
		if got.DeletionTimestamp == nil {
			t.Errorf("deletionTimestamp not set after delete: %+v", got.ObjectMeta)
		}
		if _, err := cms.Patch(ctx, "fin", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("remove finalizer: %v", err)
		}
		assertNotFound(t, cms, "fin")
	})

	t.Run("pod graceful deletion", func(t *testing.T) {
		pods := e.cs.CoreV1().Pods(ns)
		if _, err := pods.Create(ctx, newPod("bound", "node-1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Create(ctx, newPod("unbound", ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		assertNotFound(t, pods, "unbound")

		if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(ctx, "bound", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("bound pod gone at once: %v", err)
		}
		if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 {
			t.Errorf("deletionTimestamp %v grace %v, want set and 30", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
		} else if d := got.DeletionTimestamp.Sub(time.Now()); d < 20*time.Second || d > 31*time.Second {
			t.Errorf("deletionTimestamp %v is %v from now, want about 30s", got.DeletionTimestamp, d)
		}
		zero := int64(0)
		if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		assertNotFound(t, pods, "bound")
	})

	t.Run("scale subresource", func(t *testing.T) {
		deps := e.cs.AppsV1().Deployments(ns)
		if _, err := deps.Create(ctx, newDeployment("web", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sc, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Spec.Replicas != 1 || sc.Status.Selector != "app=web" || sc.Name != "web" {
			t.Errorf("scale %+v, want replicas 1 selector app=web", sc)
		}
		// kubectl scale: a merge patch of the scale subresource.
		var patched autoscalingv1.Scale
		err = e.cs.AppsV1().RESTClient().Patch(types.MergePatchType).Namespace(ns).Resource("deployments").Name("web").
			SubResource("scale").Body([]byte(`{"spec":{"replicas":3}}`)).Do(ctx).Into(&patched)
		if err != nil {
			t.Fatal(err)
		}
		if patched.Spec.Replicas != 3 {
			t.Errorf("patched scale replicas %d, want 3", patched.Spec.Replicas)
		}
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
			t.Errorf("deployment replicas %v, want 3", d.Spec.Replicas)
		}
		sc, err = deps.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc.Spec.Replicas = 5
		if sc, err = deps.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil || sc.Spec.Replicas != 5 {
			t.Fatalf("update scale: %v %v", sc, err)
		}
		sc.Spec.Replicas = 6 // stale resourceVersion now
		sc.ResourceVersion = "1"
		if _, err := deps.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("update scale with stale resourceVersion: %v, want Conflict", err)
		}
	})

	t.Run("status subresource ignores spec changes", func(t *testing.T) {
		skipUntilStrategiesWired(t)
		deps := e.cs.AppsV1().Deployments(ns)
		d, err := deps.Create(ctx, newDeployment("status", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Status.Replicas, d.Status.ObservedGeneration = 2, d.Generation
		seven := int32(7)
		d.Spec.Replicas = &seven
		got, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *got.Spec.Replicas != 2 || got.Status.Replicas != 2 {
			t.Errorf("after status update spec.replicas %d status.replicas %d, want 2 and 2", *got.Spec.Replicas, got.Status.Replicas)
		}
		// And the main resource ignores status changes.
		got.Status.Replicas = 9
		got, err = deps.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Replicas != 2 {
			t.Errorf("main-resource update changed status.replicas to %d", got.Status.Replicas)
		}
	})
}

func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}

func TestServer_ListAndSelectors(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "lists")
	other := e.namespace(t, "lists-other")
	ctx := t.Context()
	cms := e.cs.CoreV1().ConfigMaps(ns)
	for i, tier := range []string{"x", "y", "z", "x", "y"} {
		cm := newConfigMap(fmt.Sprintf("cm-%d", i))
		cm.Labels = map[string]string{"tier": tier, "app": "lists"}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.cs.CoreV1().ConfigMaps(other).Create(ctx, newConfigMap("cm-0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("pagination", func(t *testing.T) {
		// Compare with one unpaginated list, so objects other components create in every
		// namespace do not matter.
		full, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, it := range full.Items {
			want = append(want, it.Name)
		}
		if len(want) < 5 {
			t.Fatalf("full list %v, want at least cm-0..cm-4", want)
		}
		var names []string
		var remaining []int64
		opts := metav1.ListOptions{Limit: 2}
		var rv string
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatal("too many pages")
			}
			l, err := cms.List(ctx, opts)
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			if rv == "" {
				rv = l.ResourceVersion
			} else if l.ResourceVersion != rv {
				t.Errorf("page %d resourceVersion %s, want the first page's %s", page, l.ResourceVersion, rv)
			}
			if len(l.Items) > 2 {
				t.Errorf("page %d has %d items, limit 2", page, len(l.Items))
			}
			for _, it := range l.Items {
				names = append(names, it.Name)
			}
			if l.Continue == "" {
				if l.RemainingItemCount != nil {
					t.Errorf("last page has remainingItemCount %d", *l.RemainingItemCount)
				}
				break
			}
			if l.RemainingItemCount == nil {
				t.Errorf("page %d has a continue token but no remainingItemCount", page)
			} else {
				remaining = append(remaining, *l.RemainingItemCount)
			}
			opts.Continue = l.Continue
		}
		if !slices.Equal(names, want) {
			t.Errorf("names %v, want %v", names, want)
		}
		for i, r := range remaining {
			if w := int64(len(want) - 2*(i+1)); r != w {
				t.Errorf("page %d remainingItemCount %d, want %d", i, r, w)
			}
		}
	})

	t.Run("all namespaces", func(t *testing.T) {
		l, err := e.cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=cm-0"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range l.Items {
			got = append(got, it.Namespace+"/"+it.Name)
		}
		// Key order, as etcd returns it: "lists-other/" sorts before "lists/".
		if want := []string{other + "/cm-0", ns + "/cm-0"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	selectors := []struct {
		name            string
		label, field    string
		resourceVersion string
		want            []string
	}{
		{name: "label equality", label: "tier=x", want: []string{"cm-0", "cm-3"}},
		{name: "label set", label: "tier in (y,z)", want: []string{"cm-1", "cm-2", "cm-4"}},
		{name: "label inequality", label: "tier!=x,app=lists", want: []string{"cm-1", "cm-2", "cm-4"}},
		{name: "label existence", label: "app=lists,!tier", want: nil},
		{name: "field metadata.name", field: "metadata.name=cm-2", want: []string{"cm-2"}},
		{name: "field metadata.name inequality", label: "app=lists", field: "metadata.name!=cm-2", want: []string{"cm-0", "cm-1", "cm-3", "cm-4"}},
		{name: "field metadata.namespace", label: "app=lists", field: "metadata.namespace=" + ns, want: []string{"cm-0", "cm-1", "cm-2", "cm-3", "cm-4"}},
		{name: "label and field", label: "tier=y", field: "metadata.name=cm-4", want: []string{"cm-4"}},
		{name: "from the watch cache", label: "tier=x", resourceVersion: "0", want: []string{"cm-0", "cm-3"}},
	}
	for _, tc := range selectors {
		t.Run(tc.name, func(t *testing.T) {
			l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: tc.label, FieldSelector: tc.field, ResourceVersion: tc.resourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range l.Items {
				got = append(got, it.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("pod field selectors", func(t *testing.T) {
		skipUntilStrategiesWired(t)
		pods := e.cs.CoreV1().Pods(ns)
		for _, p := range []*corev1.Pod{newPod("on-a", "node-a"), newPod("on-b", "node-b"), newPod("pending", "")} {
			if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		running, err := pods.Get(ctx, "on-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		running.Status.Phase = corev1.PodRunning
		if _, err := pods.UpdateStatus(ctx, running, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, field string
			want        []string
		}{
			{name: "spec.nodeName", field: "spec.nodeName=node-b", want: []string{"on-b"}},
			{name: "unscheduled", field: "spec.nodeName=", want: []string{"pending"}},
			{name: "status.phase", field: "status.phase=Running", want: []string{"on-a"}},
			{name: "status.phase pending", field: "status.phase=Pending", want: []string{"on-b", "pending"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: tc.field})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, it := range l.Items {
					got = append(got, it.Name)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func parseRV(rv string) (int64, error) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q: %w", rv, err)
	}
	return n, nil
}
