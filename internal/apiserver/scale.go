package apiserver

import (
	"fmt"
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// replicasPaths maps the group/versions of Deployments, ReplicaSets and
// ReplicationControllers to their replicas field (kube's ReplicasPathMappings).
var replicasPaths = managedfields.ResourcePathMappings{
	"apps/v1beta1": fieldpath.MakePathOrDie("spec", "replicas"),
	"apps/v1beta2": fieldpath.MakePathOrDie("spec", "replicas"),
	"apps/v1":      fieldpath.MakePathOrDie("spec", "replicas"),
	"v1":           fieldpath.MakePathOrDie("spec", "replicas"),
}

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
	var pt types.PatchType
	var apply applyFunc
	own := fieldOwner{}
	switch {
	case ri.verb == "update":
		own, _, err = writeOwner(r, "UpdateOptions", "")
	default:
		pt = types.PatchType(trimContentType(r.Header.Get("Content-Type")))
		switch pt {
		case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
			own, _, err = writeOwner(r, "PatchOptions", pt)
		case types.ApplyYAMLPatchType:
			apply, err = s.applier(r, ri, wo, "scale")
		default:
			err = errUnsupportedPatchType()
		}
	}
	if err != nil {
		return err
	}
	var body []byte
	if apply == nil {
		if body, err = readBody(r, s.cfg.MaxBodyBytes); err != nil {
			return err
		}
	}
	fm, err := s.fieldManager(ri.info, "scale")
	if err != nil {
		return err
	}
	mainRI := ri
	mainRI.subresource = ""
	out, _, err := s.update(r.Context(), mainRI, func(cur runtime.Object) (runtime.Object, error) {
		old, err := toScale(cur)
		if err != nil {
			return nil, err
		}
		// The scale's managedFields are the parent's entries that own spec.replicas, mapped to
		// the Scale (kube's managedfields.ScaleHandler); they go back mapped to the parent.
		cm, _ := meta.Accessor(cur)
		mf := managedfields.NewScaleHandler(cm.GetManagedFields(), ri.info.GroupVersion(), replicasPaths)
		if old.ManagedFields, err = mf.ToSubresource(); err != nil {
			return nil, err
		}
		var newScale runtime.Object
		switch {
		case apply != nil:
			newScale, err = apply(r.Context(), old.DeepCopy())
		case ri.verb == "patch":
			newScale, err = s.applyPatch(w, old, pt, body, func() runtime.Object { return &autoscalingv1.Scale{} }, scaleGVK, wo.fieldValidation)
		default:
			newScale, err = s.decodeBody(w, r, body, &autoscalingv1.Scale{}, scaleGVK, wo.fieldValidation)
		}
		if err != nil {
			return nil, err
		}
		if apply == nil {
			newScale = fm.UpdateNoErrors(old, newScale, own.manager)
		}
		sc, ok := newScale.(*autoscalingv1.Scale)
		if !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("expected input object type to be Scale, but %T", newScale))
		}
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), ri.name, field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != old.ResourceVersion {
			return nil, apierrors.NewConflict(gr, ri.name, errConflictModified)
		}
		setReplicas(cur, sc.Spec.Replicas)
		parent, err := mf.ToParent(sc.ManagedFields)
		if err != nil {
			return nil, err
		}
		cm.SetManagedFields(parent)
		return cur, nil
	}, nil, wo.dryRun, fieldOwner{done: true})
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
