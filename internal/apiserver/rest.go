package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metainternalversionvalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

// serveResource dispatches a parsed resource request.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	gr := ri.info.GroupResource()
	var err error
	switch ri.subresource {
	case "":
		switch ri.verb {
		case "get":
			err = s.serveGet(w, r, ri)
		case "list":
			err = s.serveList(w, r, ri)
		case "watch":
			err = s.serveWatch(w, r, ri)
		case "create":
			if ri.name != "" {
				err = methodNotSupported(gr, "create")
				break
			}
			err = s.serveCreate(w, r, ri)
		case "update":
			err = s.serveUpdate(w, r, ri)
		case "patch":
			err = s.servePatch(w, r, ri)
		case "delete":
			err = s.serveDelete(w, r, ri)
		case "deletecollection":
			err = s.serveDeleteCollection(w, r, ri)
		default:
			err = methodNotSupported(gr, ri.verb)
		}
	case "status", "finalize":
		switch ri.verb {
		case "get":
			err = s.serveGet(w, r, ri)
		case "update":
			err = s.serveUpdate(w, r, ri)
		case "patch":
			if ri.subresource == "finalize" {
				err = methodNotSupported(gr, ri.verb)
				break
			}
			err = s.servePatch(w, r, ri)
		default:
			err = methodNotSupported(gr, ri.verb)
		}
	case "scale":
		err = s.serveScale(w, r, ri)
	case "binding":
		err = s.serveBinding(w, r, ri)
	default:
		if s.cfg.Connect != nil {
			s.cfg.Connect.ServeHTTP(w, r)
			return
		}
		err = methodNotSupported(gr, ri.verb)
	}
	if err != nil {
		s.writeError(w, r, err, gr, ri.name)
	}
}

func (s *Server) key(ri requestInfo, name string) string {
	return s.store.Key(ri.info, ri.namespace, name)
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	obj, err := s.store.Get(r.Context(), ri.info, s.key(ri, ri.name))
	if err != nil {
		return err
	}
	return s.respond(w, r, ri, http.StatusOK, obj)
}

// respond writes one object, converted to a Table or metadata when the client asked.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, ri requestInfo, code int, obj runtime.Object) error {
	n, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		return errNotAcceptable()
	}
	switch n.output {
	case outputTable:
		t, err := s.toTable(r, ri.info, []runtime.Object{obj}, metav1.ListMeta{ResourceVersion: accessorRV(obj)}, true)
		if err != nil {
			return err
		}
		s.writeObject(w, r, code, t)
	case outputPartialMetadata:
		s.writeObject(w, r, code, partialMetadata(ri.info, obj))
	default:
		s.writeObject(w, r, code, obj)
	}
	return nil
}

func accessorRV(obj runtime.Object) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetResourceVersion()
	}
	return ""
}

func partialMetadata(info *resource.Info, obj runtime.Object) *metav1.PartialObjectMetadata {
	m, _ := meta.Accessor(obj)
	// A shallow copy, as kube's meta.AsPartialObjectMetadata: it is only encoded.
	p := &metav1.PartialObjectMetadata{ObjectMeta: *metaOf(m)}
	p.APIVersion, p.Kind = metav1.SchemeGroupVersion.String(), "PartialObjectMetadata"
	return p
}

// listOptions parses and validates list/watch query parameters.
func (s *Server) listOptions(r *http.Request, ri requestInfo) (*metainternalversion.ListOptions, error) {
	opts := &metainternalversion.ListOptions{}
	if err := metainternalversionscheme.ParameterCodec.DecodeParameters(r.URL.Query(), metav1.SchemeGroupVersion, opts); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if ri.verb == "watch" {
		opts.Watch = true
	}
	if errs := metainternalversionvalidation.ValidateListOptions(opts, true); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs)
	}
	if opts.FieldSelector != nil {
		supported := s.fieldSet(ri.info, ri.info.New())
		for _, req := range opts.FieldSelector.Requirements() {
			if _, ok := supported[req.Field]; !ok {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
	}
	if ri.name != "" {
		// get ?watch=true on a named object, and /watch/.../name paths: select by name.
		nameSel := fields.OneTermEqualSelector("metadata.name", ri.name)
		if opts.FieldSelector == nil || opts.FieldSelector.Empty() {
			opts.FieldSelector = nameSel
		} else {
			opts.FieldSelector = fields.AndSelectors(opts.FieldSelector, nameSel)
		}
	}
	return opts, nil
}

// filter returns the label/field predicate of opts, or nil when it selects everything.
func (s *Server) filter(info *resource.Info, opts *metainternalversion.ListOptions) func(runtime.Object) bool {
	ls, fs := opts.LabelSelector, opts.FieldSelector
	if ls != nil && ls.Empty() {
		ls = nil
	}
	if fs != nil && fs.Empty() {
		fs = nil
	}
	if ls == nil && fs == nil {
		return nil
	}
	return func(obj runtime.Object) bool {
		if ls != nil {
			m, err := meta.Accessor(obj)
			if err != nil || !ls.Matches(labels.Set(m.GetLabels())) {
				return false
			}
		}
		if fs != nil && !fs.Matches(s.fieldSet(info, obj)) {
			return false
		}
		return true
	}
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	opts, err := s.listOptions(r, ri)
	if err != nil {
		return err
	}
	n, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		return errNotAcceptable()
	}
	lo := storage.ListOptions{
		ResourceVersion: opts.ResourceVersion,
		Exact:           opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact,
		Limit:           opts.Limit,
		Continue:        opts.Continue,
		Filter:          s.filter(ri.info, opts),
	}
	if lo.ResourceVersion == "0" {
		lo.Limit = 0 // like kube-apiserver: served whole from the watch cache
	}
	res, err := s.store.List(r.Context(), ri.info, s.store.ListPrefix(ri.info, ri.namespace), lo)
	if err != nil {
		return err
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.ResourceVersion, 10), Continue: res.Continue, RemainingItemCount: res.RemainingItemCount}
	switch n.output {
	case outputTable:
		return s.writeTable(w, r, ri.info, res.Items, lm)
	case outputPartialMetadata:
		var items []runtime.Object // null when empty, as kube's asPartialObjectMetadataList
		if len(res.Items) > 0 {
			items = make([]runtime.Object, 0, len(res.Items))
		}
		for _, it := range res.Items {
			items = append(items, partialMetadata(ri.info, it))
		}
		s.writeList(w, r, metav1.SchemeGroupVersion.WithKind("PartialObjectMetadataList"), lm, items)
		return nil
	}
	items := res.Items
	if items == nil {
		items = []runtime.Object{} // a typed list's "items":[] (meta.SetList), never null
	}
	s.writeList(w, r, ri.info.GroupVersion().WithKind(ri.info.ListKind), lm, items)
	return nil
}

// writeOptions are the query parameters common to create, update and patch.
type writeOptions struct {
	dryRun          bool
	fieldValidation string // Strict, Warn or Ignore
}

func parseWriteOptions(r *http.Request) (writeOptions, error) {
	q := r.URL.Query()
	var o writeOptions
	for _, d := range q["dryRun"] {
		if d != metav1.DryRunAll {
			return o, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value: %q; the only valid value is %q", d, metav1.DryRunAll))
		}
		o.dryRun = true
	}
	switch v := q.Get("fieldValidation"); v {
	case "", "Warn":
		o.fieldValidation = "Warn"
	case "Strict", "Ignore":
		o.fieldValidation = v
	default:
		return o, apierrors.NewBadRequest(fmt.Sprintf("fieldValidation parameter unsupported: %v", v))
	}
	return o, nil
}

// decodeBody decodes a request body into a new object of the resource (or of kind `into`),
// applying the field-validation directive.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, data []byte, into runtime.Object, gvk schema.GroupVersionKind, fv string) (runtime.Object, error) {
	dec, ok := decoderFor(r.Header.Get("Content-Type"))
	if !ok {
		return nil, errUnsupportedMediaType(r.Header.Get("Content-Type"))
	}
	return s.decodeWith(w, dec, data, into, gvk, fv)
}

func (s *Server) decodeWith(w http.ResponseWriter, dec bodyDecoder, data []byte, into runtime.Object, gvk schema.GroupVersionKind, fv string) (runtime.Object, error) {
	if len(data) == 0 {
		return nil, apierrors.NewBadRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
	}
	d := dec.lax
	if fv != "Ignore" {
		d = dec.strict
	}
	obj, got, err := d.Decode(data, &gvk, into)
	if err != nil {
		if strictErr, ok := runtime.AsStrictDecodingError(err); ok && obj != nil {
			switch fv {
			case "Strict":
				return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
			case "Warn":
				for _, e := range strictErr.Errors() {
					w.Header().Add("Warning", fmt.Sprintf("299 - %q", e.Error()))
				}
			}
		} else {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
		}
	}
	if got != nil && (got.Group != gvk.Group || got.Version != gvk.Version) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion().String(), gvk.GroupVersion().String()))
	}
	if got != nil && got.Kind != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %s", gvk.Kind, got.Kind))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	wo, err := parseWriteOptions(r)
	if err != nil {
		return err
	}
	data, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	own, _, err := writeOwner(r, "CreateOptions", "")
	if err != nil {
		return err
	}
	obj, err := s.decodeBody(w, r, data, ri.info.New(), ri.info.GroupVersionKind(), wo.fieldValidation)
	if err != nil {
		return err
	}
	out, err := s.create(r.Context(), ri, obj, wo.dryRun, own)
	if err != nil {
		return err
	}
	return s.respond(w, r, ri, http.StatusCreated, out)
}

// create runs the create path for a decoded object: namespace checks, system metadata,
// defaulting, managedFields (an Update by own.manager), preparation, validation, storage.
func (s *Server) create(ctx context.Context, ri requestInfo, obj runtime.Object, dryRun bool, own fieldOwner) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	gk := ri.info.GroupVersionKind().GroupKind()
	if ri.info.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(ri.namespace)
		} else if m.GetNamespace() != ri.namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if err := s.checkNamespace(ctx, ri.namespace); err != nil {
			return nil, err
		}
	} else {
		m.SetNamespace("")
	}
	now := metav1.NewTime(s.now().UTC().Truncate(1e9))
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(now)
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	k := s.kind(ri.info)
	k.Strategy.Default(obj)
	obj = s.recordUpdate(ri.info, "", ri.info.New(), obj, own)
	hooks := s.cfg.Hooks[ri.info.GroupResource()]
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	base := obj
	for attempt := 0; ; attempt++ {
		obj := base.DeepCopyObject()
		m, _ := meta.Accessor(obj)
		if generated {
			m.SetName(m.GetGenerateName() + utilrand.String(5))
		}
		// Allocation runs before PrepareForCreate and validation, as kube's service
		// BeginCreate does; its etcd operations commit atomically with the object.
		var extra *storage.Txn
		if hooks != nil {
			var err error
			if extra, err = hooks.BeforeCreate(ctx, obj, dryRun); err != nil {
				return nil, err
			}
		}
		k.Strategy.PrepareForCreate(ctx, obj)
		if errs := k.Strategy.Validate(ctx, obj); len(errs) > 0 {
			return nil, apierrors.NewInvalid(gk, m.GetName(), errs)
		}
		if cw, ok := k.Strategy.(createWarner); ok && attempt == 0 {
			for _, w := range cw.WarningsOnCreate(ctx, obj) {
				addWarning(ctx, w)
			}
		}
		out, err := s.store.Create(ctx, ri.info, s.store.Key(ri.info, m.GetNamespace(), m.GetName()), obj, extra, dryRun)
		if err != nil && attempt < 8 && (generated && errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrRace)) {
			continue
		}
		if err != nil {
			return nil, toAPIError(err, ri.info.GroupResource(), m.GetName())
		}
		return out, nil
	}
}

// checkNamespace implements the NamespaceLifecycle admission rules for creates.
func (s *Server) checkNamespace(ctx context.Context, ns string) error {
	info := resource.Lookup(corev1.SchemeGroupVersion.WithResource("namespaces"))
	obj, err := s.store.Get(ctx, info, s.store.Key(info, "", ns))
	if errors.Is(err, storage.ErrNotFound) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), ns)
	}
	if err != nil {
		return err
	}
	if nsObj := obj.(*corev1.Namespace); nsObj.DeletionTimestamp != nil || nsObj.Status.Phase == corev1.NamespaceTerminating {
		e := apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
		e.ErrStatus.Message = fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", ns)
		e.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: e.ErrStatus.Message, Field: "metadata.namespace"}}
		return e
	}
	return nil
}

// allowCreateOnUpdate lists the resources whose PUT creates a missing object (kube's
// AllowCreateOnUpdate strategies).
var allowCreateOnUpdate = map[string]bool{"endpoints": true, "events": true, "leases": true, "endpointslices": false, "services": true}

func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	wo, err := parseWriteOptions(r)
	if err != nil {
		return err
	}
	data, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	own, _, err := writeOwner(r, "UpdateOptions", "")
	if err != nil {
		return err
	}
	obj, err := s.decodeBody(w, r, data, ri.info.New(), ri.info.GroupVersionKind(), wo.fieldValidation)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if m.GetName() != ri.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.name))
	}
	if ri.info.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(ri.namespace)
		} else if m.GetNamespace() != ri.namespace {
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	out, created, err := s.update(r.Context(), ri, func(cur runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}, obj, wo.dryRun, own)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.respond(w, r, ri, code, out)
}

// update applies newObj(current) through the update path of ri's subresource, recording an
// Update by own.manager in managedFields. fallback is the object to create when the resource
// allows create-on-update and nothing exists.
func (s *Server) update(ctx context.Context, ri requestInfo, newObj func(cur runtime.Object) (runtime.Object, error), fallback runtime.Object, dryRun bool, own fieldOwner) (runtime.Object, bool, error) {
	gk := ri.info.GroupVersionKind().GroupKind()
	k := s.kind(ri.info)
	key := s.key(ri, ri.name)
	var deleteAfter, warned bool
	out, err := s.store.GuaranteedUpdate(ctx, ri.info, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		obj, err := newObj(cur.DeepCopyObject())
		if err != nil {
			return nil, nil, err
		}
		nm, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(err.Error())
		}
		om, _ := meta.Accessor(cur)
		if rv := nm.GetResourceVersion(); rv != "" && rv != om.GetResourceVersion() {
			return nil, nil, apierrors.NewConflict(ri.info.GroupResource(), ri.name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		nm.SetResourceVersion(om.GetResourceVersion())
		if nm.GetUID() == "" {
			nm.SetUID(om.GetUID())
		}
		if ts := nm.GetCreationTimestamp(); ts.IsZero() {
			nm.SetCreationTimestamp(om.GetCreationTimestamp())
		}
		nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
		nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
		nm.SetGeneration(om.GetGeneration())
		nm.SetSelfLink("")
		var errs field.ErrorList
		var extra *storage.Txn
		switch ri.subresource {
		case "status":
			k.Strategy.Default(obj)
			obj = s.recordUpdate(ri.info, ri.subresource, cur, obj, own)
			st := k.Status
			if st == nil {
				st = genericStatus{}
			}
			st.PrepareForUpdate(ctx, obj, cur)
			errs = st.ValidateUpdate(ctx, obj, cur)
		case "finalize":
			// Namespace finalize: only spec.finalizers may change.
			nsNew, nsOld := obj.(*corev1.Namespace), cur.(*corev1.Namespace)
			fin := nsNew.Spec.Finalizers
			obj = nsOld.DeepCopy()
			obj.(*corev1.Namespace).Spec.Finalizers = fin
			obj = s.recordUpdate(ri.info, ri.subresource, cur, obj, own)
		default:
			k.Strategy.Default(obj)
			obj = s.recordUpdate(ri.info, "", cur, obj, own)
			if hooks := s.cfg.Hooks[ri.info.GroupResource()]; hooks != nil {
				if extra, err = hooks.BeforeUpdate(ctx, obj, cur, dryRun); err != nil {
					return nil, nil, err
				}
			}
			k.Strategy.PrepareForUpdate(ctx, obj, cur)
			errs = k.Strategy.ValidateUpdate(ctx, obj, cur)
		}
		if len(errs) > 0 {
			return nil, nil, apierrors.NewInvalid(gk, ri.name, errs)
		}
		keepManagedFieldsTimes(obj, cur)
		if uw, ok := k.Strategy.(updateWarner); ok && ri.subresource == "" && !warned {
			for _, w := range uw.WarningsOnUpdate(ctx, obj, cur) {
				addWarning(ctx, w)
			}
			warned = true
		}
		deleteAfter = shouldDeleteDuringUpdate(obj)
		return obj, extra, nil
	}, dryRun)
	if errors.Is(err, storage.ErrNotFound) && fallback != nil && ri.subresource == "" && allowCreateOnUpdate[ri.info.Resource] {
		created, err := s.create(ctx, ri, fallback, dryRun, own)
		return created, true, err
	}
	if err != nil {
		return nil, false, toAPIError(err, ri.info.GroupResource(), ri.name)
	}
	if deleteAfter && !dryRun {
		m, _ := meta.Accessor(out)
		rv := m.GetResourceVersion()
		if _, err := s.store.Delete(ctx, ri.info, key, func(cur runtime.Object) (*storage.Txn, error) {
			if accessorRV(cur) != rv {
				return nil, apierrors.NewConflict(ri.info.GroupResource(), ri.name, errors.New("object changed while finalizing"))
			}
			if hooks := s.cfg.Hooks[ri.info.GroupResource()]; hooks != nil {
				return hooks.BeforeDelete(ctx, cur)
			}
			return nil, nil
		}, false); err != nil && !errors.Is(err, storage.ErrNotFound) && !apierrors.IsConflict(err) {
			return nil, false, toAPIError(err, ri.info.GroupResource(), ri.name)
		}
	}
	return out, false, nil
}

// shouldDeleteDuringUpdate: an object being deleted whose last finalizer was removed goes away
// (for pods, only once its grace period was finished, i.e. set to 0).
func shouldDeleteDuringUpdate(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		return len(ns.Spec.Finalizers) == 0
	}
	if _, ok := obj.(*corev1.Pod); ok {
		g := m.GetDeletionGracePeriodSeconds()
		return g == nil || *g == 0
	}
	return true
}

func trimContentType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}
