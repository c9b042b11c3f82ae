package ingress

// Ingress and IngressClass validation, following k8s.io/kubernetes v1.37.2
// pkg/apis/networking/validation/validation.go (RelaxedServiceNameValidation is GA: backend
// service names are DNS-1123 labels) and pkg/apis/networking/v1/zz_generated.validations.go.

import (
	"context"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/operation"
	"k8s.io/apimachinery/pkg/api/validate"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/endpoints"
)

// MaxLenIngressClassController is the longest spec.controller of an IngressClass.
const MaxLenIngressClassController = 250

var (
	supportedPathTypes = sets.New(
		string(networkingv1.PathTypeExact),
		string(networkingv1.PathTypePrefix),
		string(networkingv1.PathTypeImplementationSpecific),
	)
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
	supportedScopes      = sets.New(
		networkingv1.IngressClassParametersReferenceScopeNamespace,
		networkingv1.IngressClassParametersReferenceScopeCluster,
	)
)

// validationOptions relax checks for data an older release stored.
type validationOptions struct {
	allowInvalidSecretName       bool
	allowInvalidWildcardHostRule bool
	// strictServiceName validates backend service names as DNS-1035 labels. Upstream's
	// zero-value options do that; the real validation always relaxes to DNS-1123 labels
	// (RelaxedServiceNameValidation is GA), so it matters only in allowInvalidWildcardHostRule.
	strictServiceName bool
}

// ValidateIngressCreate validates a new Ingress (ING-V-01..06).
func ValidateIngressCreate(ing *networkingv1.Ingress) field.ErrorList {
	allErrs := validateIngress(ing, validationOptions{})
	if val, ok := ing.Annotations[AnnotationIngressClass]; ok && ing.Spec.IngressClassName != nil && val != *ing.Spec.IngressClassName {
		// Upstream builds this path with Child, not Key.
		p := field.NewPath("annotations").Child(AnnotationIngressClass)
		allErrs = append(allErrs, field.Invalid(p, val, "must match `ingressClassName` when both are specified"))
	}
	return allErrs
}

// ValidateIngressUpdate validates an Ingress update; invalid TLS secret names and invalid
// rules under wildcard hosts are tolerated when the old object already had them.
func ValidateIngressUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	allErrs := registry.ValidateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	opts := validationOptions{
		allowInvalidSecretName:       allowInvalidSecretName(old),
		allowInvalidWildcardHostRule: allowInvalidWildcardHostRule(old),
	}
	return append(allErrs, validateIngress(ing, opts)...)
}

func validateIngress(ing *networkingv1.Ingress, opts validationOptions) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&ing.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateIngressSpec(&ing.Spec, field.NewPath("spec"), opts)...)
}

func validateIngressSpec(spec *networkingv1.IngressSpec, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, spec.Rules, fmt.Sprintf("either `%s` or `rules` must be specified", "defaultBackend")))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, fldPath.Child("defaultBackend"), opts)...)
	}
	if len(spec.Rules) > 0 {
		allErrs = append(allErrs, validateIngressRules(spec.Rules, fldPath.Child("rules"), opts)...)
	}
	if len(spec.TLS) > 0 {
		allErrs = append(allErrs, validateIngressTLS(spec, fldPath.Child("tls"), opts)...)
	}
	if spec.IngressClassName != nil {
		for _, msg := range registry.NameIsDNSSubdomain(*spec.IngressClassName, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("ingressClassName"), *spec.IngressClassName, msg))
		}
	}
	return allErrs
}

func validateIngressTLS(spec *networkingv1.IngressSpec, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	for ti, tls := range spec.TLS {
		for i, host := range tls.Hosts {
			p := fldPath.Index(ti).Child("hosts").Index(i)
			if strings.Contains(host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(host) {
					allErrs = append(allErrs, field.Invalid(p, host, msg))
				}
				continue
			}
			for _, msg := range validation.IsDNS1123Subdomain(host) {
				allErrs = append(allErrs, field.Invalid(p, host, msg))
			}
		}
		if !opts.allowInvalidSecretName {
			for _, msg := range validateTLSSecretName(tls.SecretName) {
				allErrs = append(allErrs, field.Invalid(fldPath.Index(ti).Child("secretName"), tls.SecretName, msg))
			}
		}
	}
	return allErrs
}

func validateTLSSecretName(name string) []string {
	if len(name) == 0 {
		return nil
	}
	return registry.NameIsDNSSubdomain(name, false)
}

func validateIngressRules(rules []networkingv1.IngressRule, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	for i, rule := range rules {
		wildcardHost := false
		hostPath := fldPath.Index(i).Child("host")
		if len(rule.Host) > 0 {
			if netutils.ParseIPSloppy(rule.Host) != nil {
				allErrs = append(allErrs, field.Invalid(hostPath, rule.Host, "must be a DNS name, not an IP address"))
			}
			if strings.Contains(rule.Host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(rule.Host) {
					allErrs = append(allErrs, field.Invalid(hostPath, rule.Host, msg))
				}
				wildcardHost = true
			} else {
				for _, msg := range validation.IsDNS1123Subdomain(rule.Host) {
					allErrs = append(allErrs, field.Invalid(hostPath, rule.Host, msg))
				}
			}
		}
		if !wildcardHost || !opts.allowInvalidWildcardHostRule {
			allErrs = append(allErrs, validateIngressRuleValue(&rule.IngressRuleValue, fldPath.Index(i), opts)...)
		}
	}
	return allErrs
}

func validateIngressRuleValue(rule *networkingv1.IngressRuleValue, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	if rule.HTTP == nil {
		return allErrs
	}
	httpPath := fldPath.Child("http")
	if len(rule.HTTP.Paths) == 0 {
		allErrs = append(allErrs, field.Required(httpPath.Child("paths"), ""))
	}
	for i := range rule.HTTP.Paths {
		allErrs = append(allErrs, validateHTTPIngressPath(&rule.HTTP.Paths[i], httpPath.Child("paths").Index(i), opts)...)
	}
	return allErrs
}

func validateHTTPIngressPath(path *networkingv1.HTTPIngressPath, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	if path.PathType == nil {
		return append(allErrs, field.Required(fldPath.Child("pathType"), "pathType must be specified"))
	}
	pathPath := fldPath.Child("path")
	switch *path.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(path.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pathPath, path.Path, "must be an absolute path"))
		}
		if len(path.Path) > 0 {
			for _, seq := range invalidPathSequences {
				if strings.Contains(path.Path, seq) {
					allErrs = append(allErrs, field.Invalid(pathPath, path.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suff := range invalidPathSuffixes {
				if strings.HasSuffix(path.Path, suff) {
					allErrs = append(allErrs, field.Invalid(pathPath, path.Path, fmt.Sprintf("cannot end with '%s'", suff)))
				}
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if len(path.Path) > 0 && !strings.HasPrefix(path.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pathPath, path.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *path.PathType, sets.List(supportedPathTypes)))
	}
	return append(allErrs, validateIngressBackend(&path.Backend, fldPath.Child("backend"), opts)...)
}

func validateIngressBackend(backend *networkingv1.IngressBackend, fldPath *field.Path, opts validationOptions) field.ErrorList {
	allErrs := field.ErrorList{}
	switch {
	case backend.Resource != nil && backend.Service != nil:
		return append(allErrs, field.Invalid(fldPath, "", "cannot set both resource and service backends"))
	case backend.Resource != nil:
		allErrs = append(allErrs, validateTypedLocalObjectReference(backend.Resource.APIGroup, backend.Resource.Kind, backend.Resource.Name, fldPath.Child("resource"), false)...)
	case backend.Service != nil:
		svc := backend.Service
		if len(svc.Name) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("service", "name"), ""))
		} else {
			nameFn := registry.NameIsDNSLabel
			if opts.strictServiceName {
				nameFn = apimachineryvalidation.NameIsDNS1035Label
			}
			for _, msg := range nameFn(svc.Name, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "name"), svc.Name, msg))
			}
		}
		hasName, hasNumber := len(svc.Port.Name) > 0, svc.Port.Number != 0
		switch {
		case hasName && hasNumber:
			allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case hasName:
			for _, msg := range validation.IsValidPortName(svc.Port.Name) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "name"), svc.Port.Name, msg))
			}
		case hasNumber:
			for _, msg := range validation.IsValidPortNum(int(svc.Port.Number)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "number"), svc.Port.Number, msg))
			}
		default:
			allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
		}
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, "", "resource or service backend is required"))
	}
	return allErrs
}

// validateTypedLocalObjectReference checks apiGroup, kind and name of a backend resource or
// IngressClass parameters; covered marks the required-field errors the declarative
// IngressClass rules cover.
func validateTypedLocalObjectReference(apiGroup *string, kind, name string, fldPath *field.Path, covered bool) field.ErrorList {
	allErrs := field.ErrorList{}
	if apiGroup != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*apiGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroup"), *apiGroup, msg))
		}
	}
	for _, f := range []struct{ name, value string }{{"kind", kind}, {"name", name}} {
		if f.value == "" {
			e := field.Required(fldPath.Child(f.name), "")
			if covered {
				e = e.MarkCoveredByDeclarative()
			}
			allErrs = append(allErrs, e)
			continue
		}
		for _, msg := range content.IsPathSegmentName(f.value) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child(f.name), f.value, msg))
		}
	}
	return allErrs
}

// ValidateIngressLoadBalancerStatus validates status.loadBalancer of an Ingress.
func ValidateIngressLoadBalancerStatus(status, oldStatus *networkingv1.IngressLoadBalancerStatus, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	var existing []string
	if oldStatus != nil {
		existing = make([]string, 0, len(oldStatus.Ingress))
		for _, ing := range oldStatus.Ingress {
			if len(ing.IP) > 0 {
				existing = append(existing, ing.IP)
			}
		}
	}
	for i, ing := range status.Ingress {
		idxPath := fldPath.Child("ingress").Index(i)
		if len(ing.IP) > 0 {
			allErrs = append(allErrs, endpoints.IsValidIPForLegacyField(idxPath.Child("ip"), ing.IP, existing)...)
		}
		if len(ing.Hostname) > 0 {
			for _, msg := range validation.IsDNS1123Subdomain(ing.Hostname) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ing.Hostname, msg))
			}
			if netutils.ParseIPSloppy(ing.Hostname) != nil {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return allErrs
}

func allowInvalidSecretName(old *networkingv1.Ingress) bool {
	if old == nil {
		return false
	}
	for _, tls := range old.Spec.TLS {
		if len(validateTLSSecretName(tls.SecretName)) > 0 {
			return true
		}
	}
	return false
}

func allowInvalidWildcardHostRule(old *networkingv1.Ingress) bool {
	if old == nil {
		return false
	}
	for _, rule := range old.Spec.Rules {
		if strings.Contains(rule.Host, "*") && len(validateIngressRuleValue(&rule.IngressRuleValue, nil, validationOptions{strictServiceName: true})) > 0 {
			return true
		}
	}
	return false
}

// ValidateIngressClass validates a new IngressClass (ING-C-01).
func ValidateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&ic.ObjectMeta, false, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	if len(ic.Spec.Controller) > MaxLenIngressClassController {
		allErrs = append(allErrs, field.TooLong(specPath.Child("controller"), "", MaxLenIngressClassController))
	}
	allErrs = append(allErrs, validation.IsDomainPrefixedPath(specPath.Child("controller"), ic.Spec.Controller)...)
	return append(allErrs, validateParameters(ic.Spec.Parameters, specPath.Child("parameters"))...)
}

// ValidateIngressClassUpdate validates an IngressClass update: spec.controller is immutable.
func ValidateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	allErrs := registry.ValidateObjectMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if ic.Spec.Controller != old.Spec.Controller {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "controller"), ic.Spec.Controller, "field is immutable"))
	}
	return append(allErrs, ValidateIngressClass(ic)...)
}

func validateParameters(params *networkingv1.IngressClassParametersReference, fldPath *field.Path) field.ErrorList {
	if params == nil {
		return field.ErrorList{}
	}
	allErrs := validateTypedLocalObjectReference(params.APIGroup, params.Kind, params.Name, fldPath, true)
	if params.Scope == nil {
		return append(allErrs, field.Required(fldPath.Child("scope"), ""))
	}
	scope := *params.Scope
	if !supportedScopes.Has(scope) {
		return append(allErrs, field.NotSupported(fldPath.Child("scope"), scope, sets.List(supportedScopes)))
	}
	if scope == networkingv1.IngressClassParametersReferenceScopeNamespace {
		if params.Namespace == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			for _, msg := range registry.ValidateNamespaceName(*params.Namespace, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("namespace"), *params.Namespace, msg))
			}
		}
	}
	if scope == networkingv1.IngressClassParametersReferenceScopeCluster && params.Namespace != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
	}
	return allErrs
}

// validateClassDeclaratively is Validate_IngressClass of zz_generated.validations.go without
// the alpha ObjectMeta rules: parameters.kind and parameters.name are required (beta).
func validateClassDeclaratively(ic, old *networkingv1.IngressClass) field.ErrorList {
	ctx := context.Background()
	op := operation.Operation{Type: operation.Create}
	var oldSpec *networkingv1.IngressClassSpec
	if old != nil {
		op.Type = operation.Update
		oldSpec = &old.Spec
		if apiequality.Semantic.DeepEqual(&ic.Spec, oldSpec) {
			return nil
		}
	}
	params := ic.Spec.Parameters
	var oldParams *networkingv1.IngressClassParametersReference
	if oldSpec != nil {
		oldParams = oldSpec.Parameters
		if apiequality.Semantic.DeepEqual(params, oldParams) {
			return nil
		}
	}
	p := field.NewPath("spec", "parameters")
	if len(validate.OptionalPointer(ctx, op, p, params, oldParams)) != 0 {
		return nil
	}
	var errs field.ErrorList
	for _, f := range []struct {
		name     string
		val, old *string
	}{
		{"kind", &params.Kind, fieldOf(oldParams, func(o *networkingv1.IngressClassParametersReference) *string { return &o.Kind })},
		{"name", &params.Name, fieldOf(oldParams, func(o *networkingv1.IngressClassParametersReference) *string { return &o.Name })},
	} {
		if f.old != nil && *f.val == *f.old {
			continue
		}
		errs = append(errs, validate.RequiredValue(ctx, op, p.Child(f.name), f.val, f.old).MarkBeta().MarkShortCircuit()...)
	}
	return errs
}

func fieldOf(o *networkingv1.IngressClassParametersReference, get func(*networkingv1.IngressClassParametersReference) *string) *string {
	if o == nil {
		return nil
	}
	return get(o)
}

// mergeDeclarative combines hand-written and declarative errors as kube-apiserver's
// ValidateDeclarativelyWithMigrationChecks does with DeclarativeValidationBeta on: enforced
// declarative errors replace the hand-written errors they cover and go last.
func mergeDeclarative(ctx context.Context, hv, dv field.ErrorList) field.ErrorList {
	hv = hv.MarkFromImperative()
	enforced := validate.FilterEnforcedDeclarativeErrors(ctx, dv, true)
	hv = validate.FilterCoveredHandwrittenErrors(ctx, hv, enforced, true)
	return append(hv, enforced...)
}
