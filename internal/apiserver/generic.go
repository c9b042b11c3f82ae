package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
	"kubesvc/internal/resource"
)

// genericStrategy validates metadata only; for resources without a registered Kind.
type genericStrategy struct{ info *resource.Info }

func genericKind(info *resource.Info) registry.Kind {
	return registry.Kind{Strategy: genericStrategy{info}, Status: genericStatus{}}
}

func (genericStrategy) Default(runtime.Object)                                           {}
func (genericStrategy) PrepareForCreate(context.Context, runtime.Object)                 {}
func (genericStrategy) PrepareForUpdate(context.Context, runtime.Object, runtime.Object) {}

func (g genericStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	om := metaOf(m)
	return registry.ValidateObjectMeta(om, g.info.Namespaced, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
}

func (g genericStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	m, _ := meta.Accessor(obj)
	o, _ := meta.Accessor(old)
	return registry.ValidateObjectMetaUpdate(metaOf(m), metaOf(o), field.NewPath("metadata"))
}

type genericStatus struct{}

func (genericStatus) PrepareForUpdate(context.Context, runtime.Object, runtime.Object) {}
func (genericStatus) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	m, _ := meta.Accessor(obj)
	o, _ := meta.Accessor(old)
	return registry.ValidateObjectMetaUpdate(metaOf(m), metaOf(o), field.NewPath("metadata"))
}

// fieldSet returns the field-selector set of obj for its kind.
func (s *Server) fieldSet(info *resource.Info, obj runtime.Object) fields.Set {
	if f := s.kind(info).Fields; f != nil {
		return f(obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return fields.Set{}
	}
	set := fields.Set{"metadata.name": m.GetName()}
	if info.Namespaced {
		set["metadata.namespace"] = m.GetNamespace()
	}
	return set
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

func errForbidden(u User, ri requestInfo) error {
	what := ri.info.Resource
	if ri.subresource != "" {
		what += "/" + ri.subresource
	}
	scope := "at the cluster scope"
	if ri.namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", ri.namespace)
	}
	group := ri.info.Group
	return fmt.Errorf("User %q cannot %s resource %q in API group %q %s", u.Name, ri.verb, what, group, scope)
}

// metaOf returns the ObjectMeta of a typed object (meta.Accessor returns the object itself).
func metaOf(m metav1.Object) *metav1.ObjectMeta {
	if om, ok := m.(*metav1.ObjectMeta); ok {
		return om
	}
	if a, ok := m.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return om
		}
	}
	return &metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), GenerateName: m.GetGenerateName(),
		Labels: m.GetLabels(), Annotations: m.GetAnnotations(), Finalizers: m.GetFinalizers(), OwnerReferences: m.GetOwnerReferences()}
}
