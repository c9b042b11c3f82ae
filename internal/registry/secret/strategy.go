// Package secret holds the write semantics of core/v1 Secrets, ported from k8s.io/kubernetes
// pkg/registry/core/secret/strategy.go, pkg/apis/core/v1 (SetDefaults_Secret and the
// stringData merge of Convert_v1_Secret_To_core_Secret) and pkg/apis/core/validation
// (ValidateSecret*). It may be imported by registry/all.
package secret

import (
	"context"
	"encoding/json"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// MaxSize is the limit on the summed size of data (core.MaxSecretSize).
const MaxSize = 1 * 1024 * 1024

// NewKind returns the registry description of secrets.
func NewKind() registry.Kind { return registry.Kind{Strategy: Strategy{}, Fields: Fields} }

// Strategy is the write behaviour of secrets. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default merges stringData into data (stringData wins) and clears it, as kube's conversion
// to the internal type does, and sets type Opaque when empty.
func (Strategy) Default(obj runtime.Object) {
	s := obj.(*corev1.Secret)
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
}

// PrepareForCreate does nothing: secrets have no status or generation.
func (Strategy) PrepareForCreate(context.Context, runtime.Object) {}

// PrepareForUpdate keeps the old type when the new one is empty, and generation.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	s, oldS := obj.(*corev1.Secret), old.(*corev1.Secret)
	if s.Type == "" {
		s.Type = oldS.Type
	}
	s.Generation = oldS.Generation
}

// Validate applies ValidateSecret.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateSecret(obj.(*corev1.Secret))
}

// ValidateUpdate validates the metadata update, that type is immutable, that an immutable
// secret's data does not change, and the new secret.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	s, oldS := obj.(*corev1.Secret), old.(*corev1.Secret)
	allErrs := registry.ValidateObjectMetaUpdate(&s.ObjectMeta, &oldS.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(s.Type, oldS.Type, field.NewPath("type"))...)
	if oldS.Immutable != nil && *oldS.Immutable {
		if s.Immutable == nil || !*s.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(s.Data, oldS.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
	}
	return append(allErrs, ValidateSecret(s)...)
}

// ValidateSecret validates metadata, data keys and size, and the keys each well-known
// secret type requires.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&s.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	dataPath := field.NewPath("data")
	total := 0
	for key, value := range s.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(value)
	}
	if total > MaxSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", MaxSize))
	}

	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		allErrs = append(allErrs, validateJSONKey(s.Data, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		allErrs = append(allErrs, validateJSONKey(s.Data, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		_, hasUser := s.Data[corev1.BasicAuthUsernameKey]
		_, hasPassword := s.Data[corev1.BasicAuthPasswordKey]
		if !hasUser && !hasPassword {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// validateJSONKey requires data[key] to exist and hold a JSON object.
func validateJSONKey(data map[string][]byte, key string, dataPath *field.Path) field.ErrorList {
	b, ok := data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(b, &map[string]any{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

// Fields is the secrets field-selector set: metadata.name, metadata.namespace and type.
func Fields(obj runtime.Object) fields.Set {
	s := obj.(*corev1.Secret)
	return fields.Set{"metadata.name": s.Name, "metadata.namespace": s.Namespace, "type": string(s.Type)}
}
