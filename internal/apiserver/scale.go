package apiserver

import (
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// toScale builds the autoscaling/v1 Scale of a Deployment, ReplicaSet or ReplicationController.
func toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	sc := &autoscalingv1.Scale{}
	var om metav1.ObjectMeta
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om = o.ObjectMeta
		sc.Spec.Replicas = derefInt32(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		if sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err == nil {
			sc.Status.Selector = sel.String()
		}
	case *appsv1.ReplicaSet:
		om = o.ObjectMeta
		sc.Spec.Replicas = derefInt32(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		if sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err == nil {
			sc.Status.Selector = sel.String()
		}
	case *corev1.ReplicationController:
		om = o.ObjectMeta
		sc.Spec.Replicas = derefInt32(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		sc.Status.Selector = labels.SelectorFromSet(o.Spec.Selector).String()
	default:
		return nil, apierrors.NewBadRequest("scale is not supported on this kind")
	}
	sc.ObjectMeta = metav1.ObjectMeta{Name: om.Name, Namespace: om.Namespace, UID: om.UID, ResourceVersion: om.ResourceVersion, CreationTimestamp: om.CreationTimestamp}
	sc.SetGroupVersionKind(scaleGVK)
	return sc, nil
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *corev1.ReplicationController:
		o.Spec.Replicas = &n
	}
}

func derefInt32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// serveScale serves get, update and patch of the scale subresource.
func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	gr := ri.info.GroupResource()
	if ri.verb == "get" {
		obj, err := s.store.Get(r.Context(), ri.info, s.key(ri, ri.name))
		if err != nil {
			return err
		}
		sc, err := toScale(obj)
		if err != nil {
			return err
		}
		s.writeObject(w, r, http.StatusOK, sc)
		return nil
	}
	if ri.verb != "update" && ri.verb != "patch" {
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
	var pt types.PatchType
	if ri.verb == "patch" {
		pt = types.PatchType(trimContentType(r.Header.Get("Content-Type")))
	}
	mainRI := ri
	mainRI.subresource = ""
	out, _, err := s.update(r.Context(), mainRI, func(cur runtime.Object) (runtime.Object, error) {
		old, err := toScale(cur)
		if err != nil {
			return nil, err
		}
		var newScale runtime.Object
		if ri.verb == "patch" {
			newScale, err = s.applyPatch(w, old, pt, body, func() runtime.Object { return &autoscalingv1.Scale{} }, scaleGVK, wo.fieldValidation)
		} else {
			newScale, err = s.decodeBody(w, r, body, &autoscalingv1.Scale{}, scaleGVK, wo.fieldValidation)
		}
		if err != nil {
			return nil, err
		}
		sc := newScale.(*autoscalingv1.Scale)
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), ri.name, field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != old.ResourceVersion {
			return nil, apierrors.NewConflict(gr, ri.name, errConflictModified)
		}
		setReplicas(cur, sc.Spec.Replicas)
		return cur, nil
	}, nil, wo.dryRun)
	if err != nil {
		return err
	}
	sc, err := toScale(out)
	if err != nil {
		return err
	}
	s.writeObject(w, r, http.StatusOK, sc)
	return nil
}
