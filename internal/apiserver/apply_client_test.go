package apiserver_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv1ac "k8s.io/client-go/applyconfigurations/autoscaling/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/servertest"
)

// entry returns the managedFields entry of manager, or nil.
func entry(mf []metav1.ManagedFieldsEntry, manager string) *metav1.ManagedFieldsEntry {
	for i := range mf {
		if mf[i].Manager == manager {
			return &mf[i]
		}
	}
	return nil
}

// TestApply_ClientGoTypedApply drives server-side apply with client-go's typed Apply and
// apply configurations against a whole in-process server: create on apply (with ClusterIP
// allocation), re-apply, conflicts and force, dry run, extraction of a manager's fields,
// ApplyScale, and the Update entries of typed Create and Update calls.
func TestApply_ClientGoTypedApply(t *testing.T) {
	cfg := servertest.Config(t)
	cfg.Controllers = nil // API behaviour only
	s := servertest.Start(t, cfg)
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, ns := t.Context(), "default"
	svcs := cs.CoreV1().Services(ns)

	web := corev1ac.Service("web", ns).WithLabels(map[string]string{"app": "web"}).
		WithSpec(corev1ac.ServiceSpec().WithSelector(map[string]string{"app": "web"}).
			WithPorts(corev1ac.ServicePort().WithName("http").WithPort(80)))
	svc, err := svcs.Apply(ctx, web, metav1.ApplyOptions{FieldManager: "deployer"})
	if err != nil {
		t.Fatalf("apply (create): %v", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].TargetPort.IntValue() != 80 || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Fatalf("created service not allocated or defaulted: %+v", svc.Spec)
	}
	e := entry(svc.ManagedFields, "deployer")
	if e == nil || e.Operation != metav1.ManagedFieldsOperationApply || e.APIVersion != "v1" || e.FieldsType != "FieldsV1" || e.Time == nil {
		t.Fatalf("managedFields after create on apply: %+v", svc.ManagedFields)
	}

	// Re-applying the same configuration changes nothing.
	again, err := svcs.Apply(ctx, web, metav1.ApplyOptions{FieldManager: "deployer"})
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if again.ResourceVersion != svc.ResourceVersion || again.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("re-apply changed the object: resourceVersion %s → %s, clusterIP %s → %s", svc.ResourceVersion, again.ResourceVersion, svc.Spec.ClusterIP, again.Spec.ClusterIP)
	}

	// Extraction gives back exactly what the manager applied.
	got, err := corev1ac.ExtractService(again, "deployer")
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	if got.Spec == nil || got.Spec.ClusterIP != nil || len(got.Spec.Ports) != 1 || *got.Spec.Ports[0].Port != 80 || got.Spec.Selector["app"] != "web" {
		t.Errorf("extracted configuration: %+v", got.Spec)
	}

	// Another manager changing an owned field conflicts unless it forces.
	other := corev1ac.Service("web", ns).WithSpec(corev1ac.ServiceSpec().WithSelector(map[string]string{"app": "other"}))
	_, err = svcs.Apply(ctx, other, metav1.ApplyOptions{FieldManager: "intruder"})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != 409 || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) != 1 ||
		se.ErrStatus.Details.Causes[0].Type != metav1.CauseTypeFieldManagerConflict || se.ErrStatus.Message != `Apply failed with 1 conflict: conflict with "deployer": .spec.selector` {
		t.Fatalf("conflicting apply: %v", err)
	}
	forced, err := svcs.Apply(ctx, other, metav1.ApplyOptions{FieldManager: "intruder", Force: true})
	if err != nil || forced.Spec.Selector["app"] != "other" {
		t.Fatalf("forced apply: %v %v", err, forced)
	}

	// Dry run creates nothing.
	if _, err := svcs.Apply(ctx, corev1ac.Service("dry", ns).WithSpec(corev1ac.ServiceSpec().WithPorts(corev1ac.ServicePort().WithPort(80))),
		metav1.ApplyOptions{FieldManager: "deployer", DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run apply: %v", err)
	}
	if _, err := svcs.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run apply stored the service: %v", err)
	}

	// Typed Create and Update record Update entries: the user agent's manager by default.
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uaManager, _, _ := strings.Cut(rest.DefaultKubernetesUserAgent(), "/")
	if e := entry(cm.ManagedFields, uaManager); e == nil || e.Operation != metav1.ManagedFieldsOperationUpdate {
		t.Errorf("create without fieldManager: managedFields %+v, want an Update by %q", cm.ManagedFields, uaManager)
	}
	cm.Data["b"] = "2"
	if cm, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "editor"}); err != nil {
		t.Fatal(err)
	}
	if e := entry(cm.ManagedFields, "editor"); e == nil || !strings.Contains(string(e.FieldsV1.Raw), `"f:b"`) || strings.Contains(string(e.FieldsV1.Raw), `"f:a"`) {
		t.Errorf("update: managedFields %+v", cm.ManagedFields)
	}

	// ApplyScale owns spec.replicas through the scale subresource.
	deploys := cs.AppsV1().Deployments(ns)
	d := appsv1ac.Deployment("d", ns).WithSpec(appsv1ac.DeploymentSpec().WithReplicas(1).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "d"})).
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(map[string]string{"app": "d"}).
			WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("c").WithImage("nginx")))))
	if _, err := deploys.Apply(ctx, d, metav1.ApplyOptions{FieldManager: "deployer"}); err != nil {
		t.Fatalf("apply deployment: %v", err)
	}
	sc, err := deploys.ApplyScale(ctx, "d", autoscalingv1ac.Scale().WithSpec(autoscalingv1ac.ScaleSpec().WithReplicas(3)), metav1.ApplyOptions{FieldManager: "autoscaler", Force: true})
	if err != nil || sc.Spec.Replicas != 3 {
		t.Fatalf("apply scale: %v %v", err, sc)
	}
	dep, err := deploys.Get(ctx, "d", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e := entry(dep.ManagedFields, "autoscaler"); e == nil || e.Subresource != "scale" || e.APIVersion != "apps/v1" || e.Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("deployment managedFields after ApplyScale: %+v", dep.ManagedFields)
	}
	if e := entry(dep.ManagedFields, "deployer"); e == nil || strings.Contains(string(e.FieldsV1.Raw), "f:replicas") {
		t.Errorf("the deployer still owns spec.replicas: %+v", dep.ManagedFields)
	}
}
