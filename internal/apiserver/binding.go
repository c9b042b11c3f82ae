package apiserver

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/storage"
)

var bindingGVK = corev1.SchemeGroupVersion.WithKind("Binding")

// serveBinding serves POST pods/{name}/binding, the scheduler's way to assign a pod to a
// node (kube-apiserver's BindingREST): it sets spec.nodeName, copies the binding's
// annotations and sets the PodScheduled condition True. A pod already assigned, being
// deleted or still scheduling-gated is a Conflict.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	gr := ri.info.GroupResource()
	if ri.verb != "create" {
		return methodNotSupported(gr, ri.verb)
	}
	wo, err := parseWriteOptions(r)
	if err != nil {
		return err
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	obj, err := s.decodeBody(w, r, body, &corev1.Binding{}, bindingGVK, wo.fieldValidation)
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	if b.Namespace != "" && b.Namespace != ri.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if b.Name != ri.name {
		return apierrors.NewBadRequest("name in URL does not match name in Binding object")
	}
	if errs := validateBinding(b); len(errs) > 0 {
		return apierrors.NewInvalid(bindingGVK.GroupKind(), b.Name, errs)
	}
	_, err = s.store.GuaranteedUpdate(r.Context(), ri.info, s.key(ri, ri.name), func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		pod := cur.DeepCopyObject().(*corev1.Pod)
		if err := assignPod(pod, b); err != nil {
			return nil, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods/binding"}, ri.name, err)
		}
		return pod, nil, nil
	}, wo.dryRun)
	if err != nil {
		return toAPIError(err, gr, ri.name)
	}
	s.writeObject(w, r, http.StatusCreated, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated,
	})
	return nil
}

// validateBinding: target.kind must be empty or Node, target.name is required (kube
// ValidatePodBinding).
func validateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	if k := b.Target.Kind; k != "" && k != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), k, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	return errs
}

// assignPod applies binding b to pod (kube setPodNodeAndMetadata).
func assignPod(pod *corev1.Pod, b *corev1.Binding) error {
	switch {
	case b.UID != "" && b.UID != pod.UID:
		return fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID)
	case b.ResourceVersion != "" && b.ResourceVersion != pod.ResourceVersion:
		return fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", b.ResourceVersion, pod.ResourceVersion)
	case pod.DeletionTimestamp != nil:
		return fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name)
	case pod.Spec.NodeName != "":
		return fmt.Errorf("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName)
	case len(pod.Spec.SchedulingGates) != 0:
		return fmt.Errorf("pod %v has non-empty .spec.schedulingGates", pod.Name)
	}
	pod.Spec.NodeName = b.Target.Name
	if len(b.Annotations) > 0 && pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	for k, v := range b.Annotations {
		pod.Annotations[k] = v
	}
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	for i, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			if c.Status == corev1.ConditionTrue {
				scheduled.LastTransitionTime = c.LastTransitionTime
			}
			pod.Status.Conditions[i] = scheduled
			return nil
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, scheduled)
	return nil
}
