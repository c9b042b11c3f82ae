package printdiff

import (
	"flag"
	"math/rand"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/coordination/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/discovery/install"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	"k8s.io/kubernetes/pkg/printers"
	printersinternal "k8s.io/kubernetes/pkg/printers/internalversion"
	"sigs.k8s.io/randfill"

	ours "printdiff/ours"
)

func pick[T any](c randfill.Continue, xs ...T) T { return xs[c.Intn(len(xs))] }

func fill(seed int64) *randfill.Filler {
	now := time.Now()
	return randfill.NewWithSeed(seed).NilChance(0.25).NumElements(0, 5).Funcs(
		func(t *metav1.Time, c randfill.Continue) {
			if c.Intn(5) == 0 {
				*t = metav1.Time{}
				return
			}
			d := time.Duration(c.Int63n(int64(400 * 24 * time.Hour)))
			*t = metav1.NewTime(now.Add(-d).Truncate(time.Second))
		},
		func(t *metav1.MicroTime, c randfill.Continue) {
			if c.Intn(4) == 0 {
				*t = metav1.MicroTime{}
				return
			}
			*t = metav1.NewMicroTime(now.Add(-time.Duration(c.Int63n(int64(90 * 24 * time.Hour)))).Truncate(time.Second))
		},
		func(s *string, c randfill.Continue) {
			*s = pick(c, "", "a", "b", "web", "10.0.0.1", "fd00::1", "Completed", "Error", "x.example.com", "a-very-long-load-balancer-hostname.example.com")
		},
		func(m *map[string]string, c randfill.Continue) {
			if c.Intn(3) == 0 {
				*m = nil
				return
			}
			*m = map[string]string{}
			for i := 0; i < c.Intn(4); i++ {
				(*m)[pick(c, "app", "tier", "node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/", "kubernetes.io/role", "node-role.kubernetes.io/worker", networkingv1.AnnotationIsDefaultIngressClass)] = pick(c, "", "web", "true", "node")
			}
		},
		func(p *corev1.PodPhase, c randfill.Continue) {
			*p = pick[corev1.PodPhase](c, "", corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown)
		},
		func(s *corev1.PodStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Reason = pick(c, "", "", "NodeLost", "Evicted")
			for i := range s.Conditions {
				s.Conditions[i].Type = pick[corev1.PodConditionType](c, corev1.PodReady, corev1.PodInitialized, corev1.PodScheduled, "gate1", "gate2")
				s.Conditions[i].Reason = pick(c, "", corev1.PodReasonSchedulingGated)
			}
		},
		func(st *corev1.ContainerState, c randfill.Continue) {
			*st = corev1.ContainerState{}
			switch c.Intn(4) {
			case 0:
				st.Waiting = &corev1.ContainerStateWaiting{Reason: pick(c, "", "CrashLoopBackOff", "PodInitializing", "ImagePullBackOff")}
			case 1:
				st.Running = &corev1.ContainerStateRunning{}
			case 2:
				st.Terminated = &corev1.ContainerStateTerminated{ExitCode: pick[int32](c, 0, 1, 137), Signal: pick[int32](c, 0, 9), Reason: pick(c, "", "Completed", "Error", "OOMKilled")}
				c.Fill(&st.Terminated.FinishedAt)
			}
		},
		func(cs *corev1.ContainerStatus, c randfill.Continue) {
			c.FillNoCustom(cs)
			cs.Name = pick(c, "a", "b", "c", "zz")
			cs.RestartCount = int32(c.Intn(4))
		},
		func(ct *corev1.Container, c randfill.Continue) {
			*ct = corev1.Container{Name: pick(c, "a", "b", "c"), Image: pick(c, "nginx", "busybox:1")}
			if c.Intn(2) == 0 {
				ct.RestartPolicy = ptrTo(pick(c, corev1.ContainerRestartPolicyAlways, corev1.ContainerRestartPolicyOnFailure))
			}
		},
		func(t *corev1.ServiceType, c randfill.Continue) {
			*t = pick[corev1.ServiceType](c, "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
		},
		func(nc *corev1.NodeCondition, c randfill.Continue) {
			c.FillNoCustom(nc)
			nc.Type = pick[corev1.NodeConditionType](c, corev1.NodeReady, corev1.NodeMemoryPressure, "")
			nc.Status = pick[corev1.ConditionStatus](c, corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)
		},
		func(a *corev1.NodeAddress, c randfill.Continue) {
			a.Type = pick[corev1.NodeAddressType](c, corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName)
			a.Address = pick(c, "10.0.0.1", "192.0.2.1", "fd00::1")
		},
		func(ls **metav1.LabelSelector, c randfill.Continue) {
			switch c.Intn(4) {
			case 0:
				*ls = nil
			case 1:
				*ls = &metav1.LabelSelector{}
			case 2:
				*ls = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			default:
				*ls = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: pick[metav1.LabelSelectorOperator](c, metav1.LabelSelectorOpIn, "Bogus"), Values: []string{"b", "a"}}}}
			}
		},
		func(r *runtime.RawExtension, c randfill.Continue) { *r = runtime.RawExtension{} },
	)
}

func ptrTo[T any](v T) *T { return &v }

type kind struct {
	gr  schema.GroupResource
	gv  schema.GroupVersion
	new func() runtime.Object
}

func kinds() []kind {
	return []kind{
		{corev1.Resource("pods"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Pod{} }},
		{corev1.Resource("services"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Service{} }},
		{corev1.Resource("endpoints"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Endpoints{} }},
		{corev1.Resource("nodes"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Node{} }},
		{corev1.Resource("namespaces"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Namespace{} }},
		{corev1.Resource("events"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Event{} }},
		{corev1.Resource("configmaps"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.ConfigMap{} }},
		{corev1.Resource("secrets"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.Secret{} }},
		{corev1.Resource("serviceaccounts"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.ServiceAccount{} }},
		{corev1.Resource("replicationcontrollers"), corev1.SchemeGroupVersion, func() runtime.Object { return &corev1.ReplicationController{} }},
		{appsv1.Resource("deployments"), appsv1.SchemeGroupVersion, func() runtime.Object { return &appsv1.Deployment{} }},
		{appsv1.Resource("replicasets"), appsv1.SchemeGroupVersion, func() runtime.Object { return &appsv1.ReplicaSet{} }},
		{coordinationv1.Resource("leases"), coordinationv1.SchemeGroupVersion, func() runtime.Object { return &coordinationv1.Lease{} }},
		{discoveryv1.Resource("endpointslices"), discoveryv1.SchemeGroupVersion, func() runtime.Object { return &discoveryv1.EndpointSlice{} }},
		{networkingv1.Resource("ingresses"), networkingv1.SchemeGroupVersion, func() runtime.Object { return &networkingv1.Ingress{} }},
		{networkingv1.Resource("ingressclasses"), networkingv1.SchemeGroupVersion, func() runtime.Object { return &networkingv1.IngressClass{} }},
	}
}

var (
	iterations = flag.Int("iterations", 500, "random objects per kind")
	raw        = flag.Bool("raw", false, "print kubesvc's side from the undefaulted object")
)

func TestPrintersMatchKubeAPIServer(t *testing.T) {
	gen := printers.NewTableGenerator().With(printersinternal.AddHandlers)
	for _, k := range kinds() {
		t.Run(k.gr.String(), func(t *testing.T) {
			p := ours.For(k.gr)
			failures := 0
			for i := 0; i < *iterations && failures < 10; i++ {
				seed := rand.Int63()
				obj := k.new()
				fill(seed).Fill(obj)
				stored := obj.DeepCopyObject()
				legacyscheme.Scheme.Default(obj)
				if svc, ok := obj.(*corev1.Service); ok && len(svc.Spec.ClusterIPs) == 0 && svc.Spec.ClusterIP != "" {
					svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP} // normalizeClusterIPs in service storage
				}
				internal, err := legacyscheme.Scheme.ConvertToVersion(obj.DeepCopyObject(), schema.GroupVersion{Group: k.gv.Group, Version: runtime.APIVersionInternal})
				if err != nil {
					t.Fatalf("seed %d: convert: %v", seed, err)
				}
				now := time.Now()
				table, err := gen.GenerateTable(internal, printers.GenerateOptions{Wide: true})
				if err != nil {
					t.Fatalf("seed %d: upstream: %v", seed, err)
				}
				mine := obj
				if *raw {
					mine = stored
				}
				row, err := p.Row(mine, now)
				if err != nil {
					t.Fatalf("seed %d: kubesvc: %v", seed, err)
				}
				if i == 0 && !reflect.DeepEqual(table.ColumnDefinitions, p.Columns) {
					t.Errorf("columns differ:\n upstream %#v\n kubesvc  %#v", table.ColumnDefinitions, p.Columns)
				}
				up := table.Rows[0]
				if !reflect.DeepEqual(up.Cells, row.Cells) || !reflect.DeepEqual(up.Conditions, row.Conditions) {
					failures++
					t.Errorf("seed %d differs:\n upstream %#v %v\n kubesvc  %#v %v", seed, up.Cells, up.Conditions, row.Cells, row.Conditions)
				}
			}
		})
	}
}
