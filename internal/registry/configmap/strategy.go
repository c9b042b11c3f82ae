// Package configmap holds the write semantics of core/v1 ConfigMaps, ported from
// k8s.io/kubernetes pkg/registry/core/configmap/strategy.go, pkg/apis/core/v1/defaults.go
// (SetDefaults_ConfigMap) and pkg/apis/core/validation (ValidateConfigMap*). It may be
// imported by registry/all.
package configmap

import (
	"context"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// MaxSize is the limit on the summed size of data and binaryData (core.MaxSecretSize).
const MaxSize = 1 * 1024 * 1024

// NewKind returns the registry description of configmaps.
func NewKind() registry.Kind { return registry.Kind{Strategy: Strategy{}} }

// Strategy is the write behaviour of configmaps. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default makes data a non-nil map (SetDefaults_ConfigMap); an empty map is still omitted
// when serialized.
func (Strategy) Default(obj runtime.Object) {
	cm := obj.(*corev1.ConfigMap)
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
}

// PrepareForCreate does nothing: configmaps have no status or generation.
func (Strategy) PrepareForCreate(context.Context, runtime.Object) {}

// PrepareForUpdate keeps generation from old.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	obj.(*corev1.ConfigMap).Generation = old.(*corev1.ConfigMap).Generation
}

// Validate applies ValidateConfigMap.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateConfigMap(obj.(*corev1.ConfigMap))
}

// ValidateUpdate validates the new configmap, the metadata update, and that an immutable
// configmap's data does not change.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
	allErrs := registry.ValidateObjectMetaUpdate(&cm.ObjectMeta, &oldCM.ObjectMeta, field.NewPath("metadata"))
	if oldCM.Immutable != nil && *oldCM.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cm.Data, oldCM.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cm.BinaryData, oldCM.BinaryData) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return append(allErrs, ValidateConfigMap(cm)...)
}

// ValidateConfigMap validates metadata, the keys of data and binaryData (IsConfigMapKey, no
// key in both) and the total size.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&cm.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	total := 0
	for key, value := range cm.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, "duplicate of key present in binaryData"))
		}
		total += len(value)
	}
	for key, value := range cm.BinaryData {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		total += len(value)
	}
	if total > MaxSize {
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", MaxSize))
	}
	return allErrs
}
