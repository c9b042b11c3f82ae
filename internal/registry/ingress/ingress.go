// Package ingress is the registry strategy of networking.k8s.io/v1 Ingresses (with their
// status subresource) and IngressClasses: defaulting, preparation, validation (including the
// declarative beta rules kube v1.37 enforces for IngressClass parameters) and warnings
// exactly as kube-apiserver runs them.
//
// Ported from k8s.io/kubernetes v1.37.2: pkg/registry/networking/ingress/strategy.go,
// pkg/registry/networking/ingressclass/strategy.go, pkg/apis/networking/v1/defaults.go,
// pkg/apis/networking/validation/validation.go and the generated
// pkg/apis/networking/v1/zz_generated.validations.go.
//
// May be imported by the API server wiring and the ingress controller; it imports only
// internal/registry, internal/registry/endpoints and k8s.io api and apimachinery.
package ingress

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// AnnotationIngressClass is the deprecated annotation that predates spec.ingressClassName.
const AnnotationIngressClass = "kubernetes.io/ingress.class"

// Strategy is the write behaviour of Ingresses. The zero value is ready to use and it is safe
// for concurrent use. Ingresses are not created on update (kube's AllowCreateOnUpdate false).
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// NewKind returns the registry description of ingresses: strategy, status strategy and the
// metadata field selectors.
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}, Status: StatusStrategy{}}
}

// Default does nothing: networking/v1 has no Ingress defaults.
func (Strategy) Default(obj runtime.Object) {}

// PrepareForCreate clears status and sets generation 1.
func (Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	ing := obj.(*networkingv1.Ingress)
	ing.Status = networkingv1.IngressStatus{}
	ing.Generation = 1
}

// PrepareForUpdate keeps status from old and bumps generation when the spec changed.
func (Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newIng, oldIng := obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress)
	newIng.Generation = oldIng.Generation
	newIng.Status = oldIng.Status
	if !apiequality.Semantic.DeepEqual(oldIng.Spec, newIng.Spec) {
		newIng.Generation = oldIng.Generation + 1
	}
}

// Validate is ValidateIngressCreate.
func (Strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	return ValidateIngressCreate(obj.(*networkingv1.Ingress))
}

// ValidateUpdate is ValidateIngressUpdate.
func (Strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidateIngressUpdate(obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress))
}

// WarningsOnCreate warns about the deprecated ingress-class annotation used without
// spec.ingressClassName.
func (Strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string {
	ing := obj.(*networkingv1.Ingress)
	if _, ok := ing.Annotations[AnnotationIngressClass]; ok && ing.Spec.IngressClassName == nil {
		return []string{fmt.Sprintf("annotation %q is deprecated, please use 'spec.ingressClassName' instead", AnnotationIngressClass)}
	}
	return nil
}

// WarningsOnUpdate returns nothing, like kube.
func (Strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string { return nil }

// StatusStrategy is the write behaviour of ingresses/status. The zero value is ready to use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps spec (and generation) from old.
func (StatusStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newIng, oldIng := obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress)
	newIng.Generation = oldIng.Generation
	newIng.Spec = oldIng.Spec
}

// ValidateUpdate is ValidateIngressStatusUpdate.
func (StatusStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	newIng, oldIng := obj.(*networkingv1.Ingress), old.(*networkingv1.Ingress)
	allErrs := registry.ValidateObjectMetaUpdate(&newIng.ObjectMeta, &oldIng.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, ValidateIngressLoadBalancerStatus(&newIng.Status.LoadBalancer, &oldIng.Status.LoadBalancer, field.NewPath("status", "loadBalancer"))...)
}

// WarningsOnUpdate warns about non-canonical load-balancer ingress IPs.
func (StatusStrategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	ing := obj.(*networkingv1.Ingress)
	var warnings []string
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, lb := range ing.Status.LoadBalancer.Ingress {
		if len(lb.IP) > 0 {
			warnings = append(warnings, utilvalidation.GetWarningsForIP(p.Index(i), lb.IP)...)
		}
	}
	return warnings
}

// ClassStrategy is the write behaviour of IngressClasses (cluster-scoped). The zero value is
// ready to use and it is safe for concurrent use. Not created on update.
type ClassStrategy struct{}

var _ registry.Strategy = ClassStrategy{}

// NewClassKind returns the registry description of ingressclasses.
func NewClassKind() registry.Kind {
	return registry.Kind{Strategy: ClassStrategy{}}
}

// Default is SetObjectDefaults_IngressClass: parameters.scope defaults to Cluster.
func (ClassStrategy) Default(obj runtime.Object) { SetClassDefaults(obj.(*networkingv1.IngressClass)) }

// SetClassDefaults is SetDefaults_IngressClass.
func SetClassDefaults(ic *networkingv1.IngressClass) {
	if ic.Spec.Parameters != nil && ic.Spec.Parameters.Scope == nil {
		scope := networkingv1.IngressClassParametersReferenceScopeCluster
		ic.Spec.Parameters.Scope = &scope
	}
}

// PrepareForCreate sets generation 1.
func (ClassStrategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	obj.(*networkingv1.IngressClass).Generation = 1
}

// PrepareForUpdate bumps generation when the spec changed.
func (ClassStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newIC, oldIC := obj.(*networkingv1.IngressClass), old.(*networkingv1.IngressClass)
	newIC.Generation = oldIC.Generation
	if !apiequality.Semantic.DeepEqual(oldIC.Spec, newIC.Spec) {
		newIC.Generation = oldIC.Generation + 1
	}
}

// Validate is ValidateIngressClass merged with the declarative rules.
func (ClassStrategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	ic := obj.(*networkingv1.IngressClass)
	return mergeDeclarative(ctx, ValidateIngressClass(ic), validateClassDeclaratively(ic, nil))
}

// ValidateUpdate is ValidateIngressClassUpdate merged with the declarative rules.
func (ClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	newIC, oldIC := obj.(*networkingv1.IngressClass), old.(*networkingv1.IngressClass)
	return mergeDeclarative(ctx, ValidateIngressClassUpdate(newIC, oldIC), validateClassDeclaratively(newIC, oldIC))
}
