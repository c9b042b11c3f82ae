package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

// deleteOptions reads DeleteOptions from the body (JSON, YAML or protobuf) or the query.
func (s *Server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		dec, ok := decoderFor(r.Header.Get("Content-Type"))
		if !ok {
			return nil, errUnsupportedMediaType(r.Header.Get("Content-Type"))
		}
		// Clients send DeleteOptions as apiVersion v1, meta.k8s.io/v1, or without a kind.
		if dec.mediaType == mimeProtobuf {
			gvk := metav1.Unversioned.WithKind("DeleteOptions")
			if _, _, err := dec.lax.Decode(data, &gvk, opts); err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions: %v", err))
			}
		} else if err := yaml.Unmarshal(data, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions: %v", err))
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds: %v", err))
		}
		opts.GracePeriodSeconds = &g
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := v == "true"
		opts.OrphanDependents = &b
	}
	opts.DryRun = append(opts.DryRun, q["dryRun"]...)
	for _, d := range opts.DryRun {
		if d != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value: %q; the only valid value is %q", d, metav1.DryRunAll))
		}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions.propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"", *p))
		}
		if opts.OrphanDependents != nil {
			return nil, apierrors.NewBadRequest("DeleteOptions.propagationPolicy: Invalid value: \"" + string(*p) + "\": orphanDependents and deletionPropagation cannot be both set")
		}
	}
	return opts, nil
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	out, done, err := s.delete(r.Context(), ri.info, ri.namespace, ri.name, opts)
	if err != nil {
		return err
	}
	if !done || deleteReturnsObject[ri.info.GroupResource()] {
		return s.respond(w, r, ri, http.StatusOK, out)
	}
	m, _ := meta.Accessor(out)
	st := &metav1.Status{
		Status:  metav1.StatusSuccess,
		Details: &metav1.StatusDetails{Name: ri.name, Group: ri.info.Group, Kind: ri.info.Resource, UID: m.GetUID()},
	}
	s.writeObject(w, r, http.StatusOK, st)
	return nil
}

// deleteReturnsObject lists the resources whose DELETE answers with the deleted object instead
// of a Status (genericregistry.Store.ReturnDeletedObject upstream).
var deleteReturnsObject = map[schema.GroupResource]bool{{Resource: "pods"}: true, {Resource: "services"}: true}

// finalizers of the garbage collector (metav1.FinalizerOrphanDependents,
// metav1.FinalizerDeleteDependents).
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// delete deletes one object following kube-apiserver's rules: preconditions, graceful
// deletion of pods, finalizers, and the propagation policy (through the GC finalizers).
// done reports that the object is gone from storage; otherwise out is its updated state.
func (s *Server) delete(ctx context.Context, info *resource.Info, ns, name string, opts *metav1.DeleteOptions) (out runtime.Object, done bool, err error) {
	gr := info.GroupResource()
	key := s.store.Key(info, ns, name)
	dryRun := len(opts.DryRun) > 0
	checkPre := func(cur runtime.Object) error {
		m, _ := meta.Accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		return nil
	}
	var immediate bool
	updated, err := s.store.GuaranteedUpdate(ctx, info, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		immediate = false
		if err := checkPre(cur); err != nil {
			return nil, nil, err
		}
		obj := cur.DeepCopyObject()
		m, _ := meta.Accessor(obj)
		changed := false
		// Propagation policy → GC finalizers (kube's updateForGracefulDeletionAndFinalizers).
		policy := propagation(info, opts)
		fins := m.GetFinalizers()
		if m.GetDeletionTimestamp() == nil || policy != "" {
			switch policy {
			case metav1.DeletePropagationOrphan:
				if !slices.Contains(fins, finalizerOrphan) {
					fins = append(slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == finalizerForeground }), finalizerOrphan)
					changed = true
				}
			case metav1.DeletePropagationForeground:
				if !slices.Contains(fins, finalizerForeground) {
					fins = append(slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == finalizerOrphan }), finalizerForeground)
					changed = true
				}
			case metav1.DeletePropagationBackground:
				if slices.Contains(fins, finalizerOrphan) || slices.Contains(fins, finalizerForeground) {
					fins = slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == finalizerOrphan || f == finalizerForeground })
					changed = true
				}
			}
			m.SetFinalizers(fins)
		}
		grace, graceful := s.gracePeriod(obj, opts)
		if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
			if ns.Status.Phase != corev1.NamespaceTerminating {
				ns.Status.Phase = corev1.NamespaceTerminating
				changed = true
			}
			graceful, grace = true, 0
		}
		if len(fins) == 0 && !graceful {
			immediate = true
			return nil, nil, nil
		}
		now := metav1.NewTime(s.now().UTC().Truncate(1e9))
		if m.GetDeletionTimestamp() == nil {
			ts := metav1.NewTime(now.Add(timeSeconds(grace)))
			m.SetDeletionTimestamp(&ts)
			m.SetDeletionGracePeriodSeconds(&grace)
			changed = true
		} else if g := m.GetDeletionGracePeriodSeconds(); graceful && g != nil && grace < *g {
			// A shorter grace period moves the deadline earlier; never later.
			ts := metav1.NewTime(now.Add(timeSeconds(grace)))
			m.SetDeletionTimestamp(&ts)
			m.SetDeletionGracePeriodSeconds(&grace)
			changed = true
		}
		if graceful && grace == 0 && len(fins) == 0 {
			if _, isNS := obj.(*corev1.Namespace); !isNS {
				immediate = true
				return nil, nil, nil
			}
		}
		if !changed {
			return nil, nil, nil
		}
		return obj, nil, nil
	}, dryRun)
	if err != nil {
		return nil, false, toAPIError(err, gr, name)
	}
	if !immediate {
		return updated, false, nil
	}
	out, err = s.store.Delete(ctx, info, key, func(cur runtime.Object) (*storage.Txn, error) {
		if err := checkPre(cur); err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(cur)
		if len(m.GetFinalizers()) > 0 {
			return nil, apierrors.NewConflict(gr, name, errors.New("the object gained finalizers while being deleted; retry"))
		}
		if hooks := s.cfg.Hooks[gr]; hooks != nil {
			return hooks.BeforeDelete(ctx, cur)
		}
		return nil, nil
	}, dryRun)
	if err != nil {
		return nil, false, toAPIError(err, gr, name)
	}
	return out, true, nil
}

func timeSeconds(s int64) time.Duration { return time.Duration(s) * time.Second }

// propagation returns the effective policy: the request's, or orphan for orphanDependents,
// or none (the default, background without a finalizer).
func propagation(info *resource.Info, opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil {
		if *opts.OrphanDependents {
			return metav1.DeletePropagationOrphan
		}
		return metav1.DeletePropagationBackground
	}
	return ""
}

// gracePeriod returns the grace period of a pod deletion and whether it is graceful. Only
// pods bound to a node and not terminal are deleted gracefully (kube's pod CheckGracefulDelete).
func (s *Server) gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) (int64, bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0, false
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0, false
	}
	var g int64 = corev1.DefaultTerminationGracePeriodSeconds
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		g = *opts.GracePeriodSeconds
		if g < 0 {
			g = 1
		}
	}
	if g == 0 && opts.GracePeriodSeconds != nil {
		// --force --grace-period=0: remove now.
		return 0, true
	}
	return g, true
}

func (s *Server) serveDeleteCollection(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	lopts, err := s.listOptions(r, ri)
	if err != nil {
		return err
	}
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	res, err := s.store.List(r.Context(), ri.info, s.store.ListPrefix(ri.info, ri.namespace), storage.ListOptions{Filter: s.filter(ri.info, lopts)})
	if err != nil {
		return err
	}
	var deleted []runtime.Object
	for _, it := range res.Items {
		m, _ := meta.Accessor(it)
		o := *opts
		o.Preconditions = &metav1.Preconditions{UID: ptrUID(m.GetUID())}
		out, _, err := s.delete(r.Context(), ri.info, m.GetNamespace(), m.GetName(), &o)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		if out != nil {
			deleted = append(deleted, out)
		}
	}
	list := ri.info.NewList()
	if err := meta.SetList(list, deleted); err != nil {
		return err
	}
	list.GetObjectKind().SetGroupVersionKind(ri.info.GroupVersion().WithKind(ri.info.ListKind))
	s.writeObject(w, r, http.StatusOK, list)
	return nil
}

func ptrUID(u types.UID) *types.UID { return &u }
