package registry

// ObjectMeta validation as kube-apiserver runs it for the built-in kinds: apimachinery's generic
// checks plus what k8s.io/kubernetes pkg/apis/core/validation/validation.go (ValidateObjectMeta,
// ValidateObjectMetaUpdate, validateKubeFinalizerName) adds on top.

import (
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateNameFunc validates an object name with apimachinery semantics: prefix is true when
// the name is a generateName that gets a random suffix appended (a trailing dash is then
// allowed). It returns one message per violated rule, nil when the name is valid.
type ValidateNameFunc func(name string, prefix bool) []string

// Name validators for the built-in kinds.
var (
	// NameIsDNSSubdomain requires a DNS-1123 subdomain (most kinds).
	NameIsDNSSubdomain ValidateNameFunc = apimachineryvalidation.NameIsDNSSubdomain
	// NameIsDNSLabel requires a DNS-1123 label (services, namespaces).
	NameIsDNSLabel ValidateNameFunc = apimachineryvalidation.NameIsDNSLabel
	// ValidateNamespaceName validates namespace names (a DNS-1123 label).
	ValidateNamespaceName ValidateNameFunc = apimachineryvalidation.ValidateNamespaceName
	// NameIsPathSegment only requires a name usable as a URL path segment (not "." or "..",
	// no "/" or "%"): the check the generic apiserver store applies to every kind, and the only
	// one core/v1 Events get.
	NameIsPathSegment ValidateNameFunc = path.ValidatePathSegmentName
)

// standardFinalizers are the finalizer names that need no domain prefix
// (pkg/apis/core/helper/helpers.go standardFinalizers).
var standardFinalizers = map[string]bool{
	"kubernetes":                     true, // corev1.FinalizerKubernetes
	metav1.FinalizerOrphanDependents: true,
	metav1.FinalizerDeleteDependents: true,
}

// ValidateObjectMeta validates the metadata of a new object: name (with nameFn), generateName,
// namespace presence (requiresNamespace) and format, labels, annotations, ownerReferences,
// finalizers and managedFields. Name generation must already have happened.
func ValidateObjectMeta(meta *metav1.ObjectMeta, requiresNamespace bool, nameFn ValidateNameFunc, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(meta, requiresNamespace, apimachineryvalidation.ValidateNameFunc(nameFn), fldPath)
	for i := range meta.Finalizers {
		allErrs = append(allErrs, ValidateKubeFinalizerName(meta.Finalizers[i], fldPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

// ValidateObjectMetaUpdate validates the metadata of an update: name, namespace, uid,
// creationTimestamp and deletion fields are immutable, generation may not decrease,
// resourceVersion must be set (the REST handler fills it in for unconditional updates before
// validating), and no finalizers may be added once deletion has started.
func ValidateObjectMetaUpdate(newMeta, oldMeta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(newMeta, oldMeta, fldPath)
	for i := range newMeta.Finalizers {
		allErrs = append(allErrs, ValidateKubeFinalizerName(newMeta.Finalizers[i], fldPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

// ValidateKubeFinalizerName rejects a finalizer name without a "/" unless it is one of the
// standard names ("kubernetes", "orphan", "foregroundDeletion").
func ValidateKubeFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	if !strings.Contains(name, "/") && !standardFinalizers[name] {
		return field.ErrorList{field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified")}
	}
	return nil
}

// ValidateFinalizerName validates a finalizer name the way namespace spec.finalizers are
// checked: a qualified name that is either standard or domain-prefixed.
func ValidateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateFinalizerName(name, fldPath)
	return append(allErrs, ValidateKubeFinalizerName(name, fldPath)...)
}
