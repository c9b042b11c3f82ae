// Package event holds the write semantics of core/v1 Events, ported from k8s.io/kubernetes
// pkg/registry/core/event/strategy.go and pkg/apis/core/validation/events.go (the legacy
// rules applied to writes through the core/v1 API). It may be imported by registry/all.
package event

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// Length limits of the legacy event validation.
const (
	ReportingInstanceLengthLimit = 128
	ActionLengthLimit            = 128
	ReasonLengthLimit            = 128
	NoteLengthLimit              = 1024
)

// NewKind returns the registry description of events.
func NewKind() registry.Kind { return registry.Kind{Strategy: Strategy{}, Fields: Fields} }

// Strategy is the write behaviour of events. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default does nothing: kube has no Event defaults.
func (Strategy) Default(runtime.Object) {}

// PrepareForCreate does nothing: events have no status.
func (Strategy) PrepareForCreate(context.Context, runtime.Object) {}

// PrepareForUpdate keeps generation from old.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	obj.(*corev1.Event).Generation = old.(*corev1.Event).Generation
}

// Validate applies the legacy core/v1 event rules and, when they pass, the generic metadata
// checks the apiserver store runs (path-segment name, namespace present).
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	e := obj.(*corev1.Event)
	if errs := ValidateEvent(e); len(errs) > 0 {
		return errs
	}
	return registry.ValidateObjectMeta(&e.ObjectMeta, true, registry.NameIsPathSegment, field.NewPath("metadata"))
}

// ValidateUpdate applies the legacy core/v1 event rules and, when they pass, the metadata
// update checks.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	e := obj.(*corev1.Event)
	if errs := ValidateEvent(e); len(errs) > 0 {
		return errs
	}
	return registry.ValidateObjectMetaUpdate(&e.ObjectMeta, &old.(*corev1.Event).ObjectMeta, field.NewPath("metadata"))
}

// ValidateEvent is kube's legacyValidateEvent for the core/v1 API: old-style events (no
// eventTime) must have involvedObject.namespace agree with the event's namespace; new-style
// events need reportingComponent, reportingInstance, action and reason within limits.
func ValidateEvent(e *corev1.Event) field.ErrorList {
	var allErrs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return allErrs
	}
	if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	rcPath := field.NewPath("reportingComponent")
	if e.ReportingController == "" {
		allErrs = append(allErrs, field.Required(rcPath, ""))
	}
	for _, msg := range validation.IsQualifiedName(e.ReportingController) {
		allErrs = append(allErrs, field.Invalid(rcPath, e.ReportingController, msg))
	}
	if e.ReportingInstance == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("reportingInstance"), ""))
	}
	if len(e.ReportingInstance) > ReportingInstanceLengthLimit {
		allErrs = append(allErrs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", ReportingInstanceLengthLimit)))
	}
	if e.Action == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("action"), ""))
	}
	if len(e.Action) > ActionLengthLimit {
		allErrs = append(allErrs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", ActionLengthLimit)))
	}
	if e.Reason == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("reason"), ""))
	}
	if len(e.Reason) > ReasonLengthLimit {
		allErrs = append(allErrs, field.Invalid(field.NewPath("reason"), "", fmt.Sprintf("can have at most %v characters", ReasonLengthLimit)))
	}
	if len(e.Message) > NoteLengthLimit {
		allErrs = append(allErrs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", NoteLengthLimit)))
	}
	return allErrs
}

// Fields is the events field-selector set (pkg/registry/core/event ToSelectableFields):
// metadata, involvedObject.*, reason, reportingComponent, source (source.component, else
// reportingComponent) and type.
func Fields(obj runtime.Object) fields.Set {
	e := obj.(*corev1.Event)
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	return fields.Set{
		"metadata.name":                  e.Name,
		"metadata.namespace":             e.Namespace,
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         source,
		"type":                           e.Type,
	}
}
