package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// claimPods returns the pods rs owns after adopting matching orphans and releasing owned
// pods that no longer match its selector (upstream PodControllerRefManager.ClaimPods).
// pods are rs's own pods and orphans of its namespace.
func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var canAdoptErr error
	checked := false
	canAdopt := func() error {
		if !checked {
			checked = true
			canAdoptErr = c.recheckDeletion(ctx, rs)
		}
		return canAdoptErr
	}
	var claimed []*corev1.Pod
	var errs []error
	for _, p := range pods {
		ok, err := ClaimObject(ctx, ClaimRequest{
			Owner: rs, OwnerKind: c.kind.gvk(), Object: &p.ObjectMeta,
			Match: sel.Matches(labels.Set(p.Labels)), CanAdopt: canAdopt,
			Patch: func(ctx context.Context, patch []byte) error {
				_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
				return err
			},
		})
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			claimed = append(claimed, p)
		}
	}
	return claimed, errors.Join(errs...)
}

// recheckDeletion reads rs live before adopting (upstream RecheckDeletionTimestamp, kube
// issue #42639): a ReplicaSet being deleted must not adopt.
func (c *Controller) recheckDeletion(ctx context.Context, rs *appsv1.ReplicaSet) error {
	fresh, err := c.kind.getLive(ctx, rs.Namespace, rs.Name)
	if err != nil {
		return err
	}
	if fresh.UID != rs.UID {
		return fmt.Errorf("original %s %s/%s is gone: got uid %s, wanted %s", c.kind.gvk().Kind, rs.Namespace, rs.Name, fresh.UID, rs.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%s/%s has just been deleted at %v", rs.Namespace, rs.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// ClaimRequest describes one object a controller may claim. All fields are required.
type ClaimRequest struct {
	Owner     metav1.Object
	OwnerKind schema.GroupVersionKind
	Object    metav1.Object
	// Match reports whether the owner's selector matches the object.
	Match bool
	// CanAdopt is called before adopting; an error cancels the adoption.
	CanAdopt func() error
	// Patch sends a strategic merge patch to the object.
	Patch func(ctx context.Context, patch []byte) error
}

// ClaimObject decides whether r.Owner owns r.Object, adopting or releasing it as needed
// (upstream BaseControllerRefManager.ClaimObject): an object owned by another controller is
// ignored; an owned object that no longer matches is released unless the owner is being
// deleted; a matching orphan that is not being deleted is adopted with
// controller=true and blockOwnerDeletion=true.
func ClaimObject(ctx context.Context, r ClaimRequest) (bool, error) {
	if ref := metav1.GetControllerOfNoCopy(r.Object); ref != nil {
		if ref.UID != r.Owner.GetUID() {
			return false, nil
		}
		if r.Match {
			return true, nil
		}
		if r.Owner.GetDeletionTimestamp() != nil {
			return false, nil
		}
		err := r.Patch(ctx, releasePatch(r.Object.GetUID(), r.Owner.GetUID()))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			return false, fmt.Errorf("release %s/%s: %w", r.Object.GetNamespace(), r.Object.GetName(), err)
		}
		return false, nil
	}
	if r.Owner.GetDeletionTimestamp() != nil || !r.Match || r.Object.GetDeletionTimestamp() != nil ||
		r.Owner.GetNamespace() != r.Object.GetNamespace() {
		return false, nil
	}
	if err := r.CanAdopt(); err != nil {
		return false, fmt.Errorf("can't adopt %s/%s: %w", r.Object.GetNamespace(), r.Object.GetName(), err)
	}
	err := r.Patch(ctx, adoptPatch(r.Owner, r.OwnerKind, r.Object.GetUID()))
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("adopt %s/%s: %w", r.Object.GetNamespace(), r.Object.GetName(), err)
	}
	return true, nil
}

// adoptPatch adds a controller ownerReference; metadata.uid makes it fail on a recreated
// object (upstream ownerRefControllerPatch).
func adoptPatch(owner metav1.Object, kind schema.GroupVersionKind, uid types.UID) []byte {
	ref := metav1.NewControllerRef(owner, kind)
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*ref}, "uid": uid,
	}})
	return b
}

// releasePatch deletes the ownerReference to ownerUID (upstream
// GenerateDeleteOwnerRefStrategicMergeBytes).
func releasePatch(uid, ownerUID types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]string{{"$patch": "delete", "uid": string(ownerUID)}}, "uid": uid,
	}})
	return b
}
