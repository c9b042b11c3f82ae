// Package resource is the catalog of API resources kubesvc serves: for each one its
// group/version/resource, kind, scope, discovery names, verbs, subresources and Go types.
//
// Discovery, OpenAPI, the REST handlers, printing and storage all key on this one table, so a
// resource added here appears everywhere at once. Any package under internal/ may import it;
// it imports only k8s.io/api and apimachinery.
package resource

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Verb sets as kube-apiserver advertises them.
var (
	VerbsAll       = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	VerbsNamespace = []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	VerbsStatus    = []string{"get", "patch", "update"}
	VerbsConnect   = []string{"create", "get"}
)

// Subresource describes one subresource of a resource (status, scale, log, exec, ...).
type Subresource struct {
	// Name is the path segment after the object name: "status", "scale", "log".
	Name string
	// Kind is the kind the subresource returns; its group/version are empty when they equal
	// the parent's.
	Kind  schema.GroupVersionKind
	Verbs []string
}

// Info describes one resource. Values are immutable after package init.
type Info struct {
	schema.GroupVersionResource
	Kind       string
	ListKind   string
	Singular   string
	Namespaced bool
	ShortNames []string
	Categories []string
	Verbs      []string
	// Subresources in the order discovery lists them.
	Subresources []Subresource
	// StorageVersionHash as kube-apiserver 1.37 reports it (discovery only).
	StorageVersionHash string
	// New returns a new empty object of Kind; NewList a new empty ListKind.
	New     func() runtime.Object
	NewList func() runtime.Object
}

// GroupVersionKind returns the kind of the resource's objects.
func (i *Info) GroupVersionKind() schema.GroupVersionKind {
	return i.GroupVersion().WithKind(i.Kind)
}

// GroupResource returns the group and resource, e.g. "services" or "deployments.apps".
func (i *Info) GroupResource() schema.GroupResource { return i.GroupVersionResource.GroupResource() }

// HasSubresource reports whether name is one of the resource's subresources.
func (i *Info) HasSubresource(name string) bool {
	for _, s := range i.Subresources {
		if s.Name == name {
			return true
		}
	}
	return false
}

func sameKind(kind string) schema.GroupVersionKind { return schema.GroupVersionKind{Kind: kind} }

var scaleKind = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// All lists every served resource, grouped by group/version in discovery order.
var All = []*Info{
	// core/v1
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("configmaps"),
		Kind:                 "ConfigMap", ListKind: "ConfigMapList", Singular: "configmap",
		Namespaced: true, ShortNames: []string{"cm"}, Verbs: VerbsAll, StorageVersionHash: "qFsyl6wFWjQ=",
		New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("endpoints"),
		Kind:                 "Endpoints", ListKind: "EndpointsList", Singular: "endpoints",
		Namespaced: true, ShortNames: []string{"ep"}, Verbs: VerbsAll, StorageVersionHash: "fWeeMqaN/OA=",
		New: func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("events"),
		Kind:                 "Event", ListKind: "EventList", Singular: "event",
		Namespaced: true, ShortNames: []string{"ev"}, Verbs: VerbsAll, StorageVersionHash: "r2yiGXH7wu8=",
		New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("namespaces"),
		Kind:                 "Namespace", ListKind: "NamespaceList", Singular: "namespace",
		ShortNames: []string{"ns"}, Verbs: VerbsNamespace, StorageVersionHash: "Q3oi5N2YM8M=",
		Subresources: []Subresource{
			{Name: "finalize", Kind: sameKind("Namespace"), Verbs: []string{"update"}},
			{Name: "status", Kind: sameKind("Namespace"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("nodes"),
		Kind:                 "Node", ListKind: "NodeList", Singular: "node",
		ShortNames: []string{"no"}, Verbs: VerbsAll, StorageVersionHash: "XwShjMxG9Fs=",
		Subresources: []Subresource{
			{Name: "status", Kind: sameKind("Node"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("pods"),
		Kind:                 "Pod", ListKind: "PodList", Singular: "pod",
		Namespaced: true, ShortNames: []string{"po"}, Categories: []string{"all"}, Verbs: VerbsAll,
		StorageVersionHash: "xPOwRZ+Yhw8=",
		Subresources: []Subresource{
			{Name: "attach", Kind: sameKind("PodAttachOptions"), Verbs: VerbsConnect},
			{Name: "binding", Kind: sameKind("Binding"), Verbs: []string{"create"}},
			{Name: "exec", Kind: sameKind("PodExecOptions"), Verbs: VerbsConnect},
			{Name: "log", Kind: sameKind("Pod"), Verbs: []string{"get"}},
			{Name: "portforward", Kind: sameKind("PodPortForwardOptions"), Verbs: VerbsConnect},
			{Name: "status", Kind: sameKind("Pod"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("replicationcontrollers"),
		Kind:                 "ReplicationController", ListKind: "ReplicationControllerList", Singular: "replicationcontroller",
		Namespaced: true, ShortNames: []string{"rc"}, Categories: []string{"all"}, Verbs: VerbsAll,
		StorageVersionHash: "Jond2If31h0=",
		Subresources: []Subresource{
			{Name: "scale", Kind: scaleKind, Verbs: VerbsStatus},
			{Name: "status", Kind: sameKind("ReplicationController"), Verbs: VerbsStatus},
		},
		New:     func() runtime.Object { return &corev1.ReplicationController{} },
		NewList: func() runtime.Object { return &corev1.ReplicationControllerList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("secrets"),
		Kind:                 "Secret", ListKind: "SecretList", Singular: "secret",
		Namespaced: true, Verbs: VerbsAll, StorageVersionHash: "S6u1pOWzb84=",
		New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("serviceaccounts"),
		Kind:                 "ServiceAccount", ListKind: "ServiceAccountList", Singular: "serviceaccount",
		Namespaced: true, ShortNames: []string{"sa"}, Verbs: VerbsAll, StorageVersionHash: "pbx9ZvyFpBE=",
		New:     func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList: func() runtime.Object { return &corev1.ServiceAccountList{} },
	},
	{
		GroupVersionResource: corev1.SchemeGroupVersion.WithResource("services"),
		Kind:                 "Service", ListKind: "ServiceList", Singular: "service",
		Namespaced: true, ShortNames: []string{"svc"}, Categories: []string{"all"}, Verbs: VerbsAll,
		StorageVersionHash: "0/CO1lhkEBI=",
		Subresources: []Subresource{
			{Name: "status", Kind: sameKind("Service"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
	},
	// apps/v1
	{
		GroupVersionResource: appsv1.SchemeGroupVersion.WithResource("deployments"),
		Kind:                 "Deployment", ListKind: "DeploymentList", Singular: "deployment",
		Namespaced: true, ShortNames: []string{"deploy"}, Categories: []string{"all"}, Verbs: VerbsAll,
		StorageVersionHash: "8aSe+NMegvE=",
		Subresources: []Subresource{
			{Name: "scale", Kind: scaleKind, Verbs: VerbsStatus},
			{Name: "status", Kind: sameKind("Deployment"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
	},
	{
		GroupVersionResource: appsv1.SchemeGroupVersion.WithResource("replicasets"),
		Kind:                 "ReplicaSet", ListKind: "ReplicaSetList", Singular: "replicaset",
		Namespaced: true, ShortNames: []string{"rs"}, Categories: []string{"all"}, Verbs: VerbsAll,
		StorageVersionHash: "P1RzHs8/mWQ=",
		Subresources: []Subresource{
			{Name: "scale", Kind: scaleKind, Verbs: VerbsStatus},
			{Name: "status", Kind: sameKind("ReplicaSet"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
	},
	// coordination.k8s.io/v1
	{
		GroupVersionResource: coordinationv1.SchemeGroupVersion.WithResource("leases"),
		Kind:                 "Lease", ListKind: "LeaseList", Singular: "lease",
		Namespaced: true, Verbs: VerbsAll, StorageVersionHash: "gqkMMb/YqFM=",
		New: func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} },
	},
	// discovery.k8s.io/v1
	{
		GroupVersionResource: discoveryv1.SchemeGroupVersion.WithResource("endpointslices"),
		Kind:                 "EndpointSlice", ListKind: "EndpointSliceList", Singular: "endpointslice",
		Namespaced: true, Verbs: VerbsAll, StorageVersionHash: "Nx3SIv6I0mE=",
		New:     func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
	},
	// networking.k8s.io/v1
	{
		GroupVersionResource: networkingv1.SchemeGroupVersion.WithResource("ingressclasses"),
		Kind:                 "IngressClass", ListKind: "IngressClassList", Singular: "ingressclass",
		Verbs: VerbsAll, StorageVersionHash: "l/iqIbDgFyQ=",
		New:     func() runtime.Object { return &networkingv1.IngressClass{} },
		NewList: func() runtime.Object { return &networkingv1.IngressClassList{} },
	},
	{
		GroupVersionResource: networkingv1.SchemeGroupVersion.WithResource("ingresses"),
		Kind:                 "Ingress", ListKind: "IngressList", Singular: "ingress",
		Namespaced: true, ShortNames: []string{"ing"}, Verbs: VerbsAll, StorageVersionHash: "39NQlfNR+bo=",
		Subresources: []Subresource{
			{Name: "status", Kind: sameKind("Ingress"), Verbs: VerbsStatus},
		},
		New: func() runtime.Object { return &networkingv1.Ingress{} }, NewList: func() runtime.Object { return &networkingv1.IngressList{} },
	},
}

var byGVR = func() map[schema.GroupVersionResource]*Info {
	m := make(map[schema.GroupVersionResource]*Info, len(All))
	for _, i := range All {
		m[i.GroupVersionResource] = i
	}
	return m
}()

var byGK = func() map[schema.GroupKind]*Info {
	m := make(map[schema.GroupKind]*Info, len(All))
	for _, i := range All {
		m[schema.GroupKind{Group: i.Group, Kind: i.Kind}] = i
	}
	return m
}()

// Lookup returns the resource for gvr, or nil.
func Lookup(gvr schema.GroupVersionResource) *Info { return byGVR[gvr] }

// ForKind returns the resource whose objects are of kind gk, or nil.
func ForKind(gk schema.GroupKind) *Info { return byGK[gk] }

// GroupVersions returns the served group/versions in discovery order, core first.
func GroupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	for _, i := range All {
		gv := i.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	return out
}

// InGroupVersion returns the resources of gv in catalog order.
func InGroupVersion(gv schema.GroupVersion) []*Info {
	var out []*Info
	for _, i := range All {
		if i.GroupVersion() == gv {
			out = append(out, i)
		}
	}
	return out
}
