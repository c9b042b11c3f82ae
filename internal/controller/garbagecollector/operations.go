package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/retry"

	"kubesvc/internal/resource"
)

// UnknownKindError reports an ownerReference or object whose kind is not served. The item is
// retried with backoff, as upstream does for kinds its REST mapper does not know yet.
type UnknownKindError struct {
	APIVersion, Kind string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown kind %s in %s", e.Kind, e.APIVersion)
}

// lookup returns the watched resource of apiVersion/kind, matching on group and kind only (an
// ownerReference may name another version of the group), or nil.
func (c *Controller) lookup(apiVersion, kind string) *resource.Info {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil
	}
	return c.byGK[schema.GroupKind{Group: gv.Group, Kind: kind}]
}

func (c *Controller) client(id objectRef) (metadata.ResourceInterface, error) {
	info := c.lookup(id.apiVersion, id.kind)
	if info == nil {
		return nil, &UnknownKindError{APIVersion: id.apiVersion, Kind: id.kind}
	}
	if !info.Namespaced {
		return c.metadata.Resource(info.GroupVersionResource), nil
	}
	return c.metadata.Resource(info.GroupVersionResource).Namespace(id.namespace), nil
}

// getObject reads the object's metadata from the API server (never the cache).
func (c *Controller) getObject(ctx context.Context, id objectRef) (*metav1.PartialObjectMetadata, error) {
	rc, err := c.client(id)
	if err != nil {
		return nil, err
	}
	return rc.Get(ctx, id.name, metav1.GetOptions{})
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// isDangling reports whether the owner named by ref is absent for the dependent item: no
// object at the reference's coordinates (in the item's namespace for namespaced owners), or
// one with another UID. It returns the live owner otherwise.
func (c *Controller) isDangling(ctx context.Context, ref metav1.OwnerReference, item objectRef) (bool, *metav1.PartialObjectMetadata, error) {
	id := c.ownerIdentity(ref, item.namespace)
	if c.absent.has(id) {
		return true, nil, nil
	}
	info := c.lookup(ref.APIVersion, ref.Kind)
	if info == nil {
		return false, nil, &UnknownKindError{APIVersion: ref.APIVersion, Kind: ref.Kind}
	}
	if info.Namespaced && item.namespace == "" {
		return false, nil, errNamespacedOwnerOfClusterScoped
	}
	owner, err := c.getObject(ctx, id)
	switch {
	case isNotFound(err):
		c.absent.add(id)
		return true, nil, nil
	case err != nil:
		return false, nil, err
	case owner.UID != ref.UID:
		c.absent.add(id)
		return true, nil, nil
	}
	return false, owner, nil
}

// deleteObject deletes the object with the given propagation policy, with UID and
// resourceVersion preconditions. When only the resourceVersion precondition fails and the
// ownerReferences are unchanged, it retries with the UID precondition alone.
func (c *Controller) deleteObject(ctx context.Context, id objectRef, rv string, owners []metav1.OwnerReference, policy metav1.DeletionPropagation) error {
	rc, err := c.client(id)
	if err != nil {
		return err
	}
	uid := id.uid
	pre := &metav1.Preconditions{UID: &uid}
	if rv != "" {
		pre.ResourceVersion = &rv
	}
	err = rc.Delete(ctx, id.name, metav1.DeleteOptions{Preconditions: pre, PropagationPolicy: &policy})
	if apierrors.IsConflict(err) && rv != "" {
		live, lerr := rc.Get(ctx, id.name, metav1.GetOptions{})
		switch {
		case isNotFound(lerr):
			return nil
		case lerr == nil && live.UID == id.uid && live.ResourceVersion != rv && sameRefs(live.OwnerReferences, owners):
			return c.deleteObject(ctx, id, "", nil, policy)
		}
	}
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

func sameRefs(a, b []metav1.OwnerReference) bool {
	return slices.EqualFunc(a, b, refEqual)
}

// metaPatch is a JSON merge patch of metadata. The resourceVersion makes it conditional on
// the state it was computed from; the uid guards against a recreated object of the same name.
type metaPatch struct {
	Metadata metaPatchFields `json:"metadata"`
}

type metaPatchFields struct {
	ResourceVersion string                   `json:"resourceVersion"`
	UID             types.UID                `json:"uid"`
	OwnerReferences *[]metav1.OwnerReference `json:"ownerReferences,omitempty"`
	Finalizers      *[]string                `json:"finalizers,omitempty"`
}

// patchMeta reads the object, lets change compute the new metadata (false: nothing to do) and
// applies it as a conditional merge patch, retrying on conflicts. A missing object, or one
// with another UID, is not an error.
func (c *Controller) patchMeta(ctx context.Context, id objectRef, change func(live *metav1.PartialObjectMetadata, p *metaPatchFields) bool) error {
	rc, err := c.client(id)
	if err != nil {
		return err
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		live, err := rc.Get(ctx, id.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if live.UID != id.uid {
			return nil
		}
		p := metaPatch{Metadata: metaPatchFields{ResourceVersion: live.ResourceVersion, UID: live.UID}}
		if !change(live, &p.Metadata) {
			return nil
		}
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = rc.Patch(ctx, id.name, types.MergePatchType, data, metav1.PatchOptions{})
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	return nil
}

// removeOwnerReferences drops the references to the given owner UIDs from the object.
func (c *Controller) removeOwnerReferences(ctx context.Context, id objectRef, uids []types.UID) error {
	return c.patchMeta(ctx, id, func(live *metav1.PartialObjectMetadata, p *metaPatchFields) bool {
		refs := slices.DeleteFunc(slices.Clone(live.OwnerReferences), func(r metav1.OwnerReference) bool {
			return slices.Contains(uids, r.UID)
		})
		if len(refs) == len(live.OwnerReferences) {
			return false
		}
		if refs == nil {
			refs = []metav1.OwnerReference{}
		}
		p.OwnerReferences = &refs
		return true
	})
}

// unblockOwnerReferences sets blockOwnerDeletion=false on all the object's references.
func (c *Controller) unblockOwnerReferences(ctx context.Context, id objectRef) error {
	return c.patchMeta(ctx, id, func(live *metav1.PartialObjectMetadata, p *metaPatchFields) bool {
		refs := slices.Clone(live.OwnerReferences)
		changed := false
		for i := range refs {
			if isTrue(refs[i].BlockOwnerDeletion) {
				f := false
				refs[i].BlockOwnerDeletion = &f
				changed = true
			}
		}
		p.OwnerReferences = &refs
		return changed
	})
}

// removeFinalizer drops finalizer from the object; the server deletes an object being
// deleted once its last finalizer is gone.
func (c *Controller) removeFinalizer(ctx context.Context, id objectRef, finalizer string) error {
	return c.patchMeta(ctx, id, func(live *metav1.PartialObjectMetadata, p *metaPatchFields) bool {
		if !slices.Contains(live.Finalizers, finalizer) {
			return false
		}
		fins := slices.DeleteFunc(slices.Clone(live.Finalizers), func(f string) bool { return f == finalizer })
		if fins == nil {
			fins = []string{}
		}
		p.Finalizers = &fins
		return true
	})
}
