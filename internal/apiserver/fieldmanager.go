package apiserver

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"unicode"
	"unicode/utf8"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"kubesvc/internal/openapi"
	"kubesvc/internal/resource"
)

// Field ownership (metadata.managedFields) is recorded on every write the way kube-apiserver
// records it, with apimachinery's managedfields.FieldManager (the machinery kube-apiserver
// uses): Update operations for create, update and non-apply patches (manager from
// ?fieldManager= or the user agent), Apply operations for server-side apply, and entries
// tagged with the subresource ("status", "scale", "finalize") for subresource writes.

// fieldOwner says how one write records field ownership.
type fieldOwner struct {
	// manager is the field manager of an Update operation.
	manager string
	// done: the new object's managedFields are final already (server-side apply, or the
	// scale subresource, which maps them itself); record nothing more.
	done bool
}

// typeConverter is the schema-aware converter of every served kind, built once per process
// from the OpenAPI schemas (the same ones /openapi/v3 serves).
var typeConverter = sync.OnceValues(func() (managedfields.TypeConverter, error) {
	schemas, err := openapi.Schemas()
	if err != nil {
		return nil, err
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		return nil, fmt.Errorf("managedFields type converter: %w", err)
	}
	return tc, nil
})

// unsafeConvertor converts between unstructured and typed objects of one version without
// copying typed objects (kube's scope.UnsafeConvertor).
var unsafeConvertor = runtime.UnsafeObjectConvertor(scheme.Scheme)

type fieldManagerKey struct {
	gr          schema.GroupResource
	subresource string
}

// fieldManagers caches one FieldManager per resource and subresource; safe for concurrent use.
type fieldManagers struct {
	m sync.Map // fieldManagerKey → *managedfields.FieldManager
}

// defaulterFunc adapts a strategy's Default to runtime.ObjectDefaulter.
type defaulterFunc func(runtime.Object)

func (f defaulterFunc) Default(obj runtime.Object) { f(obj) }

// fieldManager returns the field manager of info's subresource ("" for the resource itself;
// "scale" manages autoscaling/v1 Scale objects).
func (s *Server) fieldManager(info *resource.Info, subresource string) (*managedfields.FieldManager, error) {
	key := fieldManagerKey{info.GroupResource(), subresource}
	if fm, ok := s.fields.m.Load(key); ok {
		return fm.(*managedfields.FieldManager), nil
	}
	tc, err := typeConverter()
	if err != nil {
		return nil, err
	}
	gvk := info.GroupVersionKind()
	var def runtime.ObjectDefaulter = defaulterFunc(func(runtime.Object) {})
	if subresource == "scale" {
		gvk = scaleGVK
	} else {
		k := s.kind(info)
		def = defaulterFunc(k.Strategy.Default)
	}
	fm, err := managedfields.NewDefaultFieldManager(tc, unsafeConvertor, def, scheme.Scheme, gvk, gvk.GroupVersion(), subresource, resetFields(info, subresource))
	if err != nil {
		return nil, fmt.Errorf("field manager of %s %s: %w", info.GroupResource(), subresource, err)
	}
	got, _ := s.fields.m.LoadOrStore(key, fm)
	return got.(*managedfields.FieldManager), nil
}

// resetFields are the fields a write to info's subresource cannot change, so nobody comes to
// own them (kube's strategies' GetResetFields): status for the main resource of kinds with a
// status subresource, spec (and for some kinds a few metadata fields) for /status.
func resetFields(info *resource.Info, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	if !info.HasSubresource("status") {
		return nil
	}
	var paths []fieldpath.Path
	switch subresource {
	case "", "finalize":
		paths = append(paths, fieldpath.MakePathOrDie("status"))
	case "status":
		paths = append(paths, fieldpath.MakePathOrDie("spec"))
		switch info.GroupResource() {
		case schema.GroupResource{Resource: "pods"}:
			paths = append(paths, fieldpath.MakePathOrDie("metadata", "deletionTimestamp"), fieldpath.MakePathOrDie("metadata", "ownerReferences"))
		case schema.GroupResource{Group: "apps", Resource: "deployments"}:
			paths = append(paths, fieldpath.MakePathOrDie("metadata", "labels"))
		}
	default:
		return nil
	}
	return fieldpath.NewExcludeFilterSetMap(map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(info.GroupVersion().String()): fieldpath.NewSet(paths...),
	})
}

// recordUpdate records an Update by own.manager of live into obj's managedFields, for the
// subresource being written. Failures keep live's managedFields (kube's UpdateNoErrors).
func (s *Server) recordUpdate(info *resource.Info, subresource string, live, obj runtime.Object, own fieldOwner) runtime.Object {
	if own.done {
		return obj
	}
	fm, err := s.fieldManager(info, subresource)
	if err != nil {
		if m, aerr := meta.Accessor(obj); aerr == nil {
			if lm, lerr := meta.Accessor(live); lerr == nil {
				m.SetManagedFields(lm.GetManagedFields())
			}
		}
		return obj
	}
	return fm.UpdateNoErrors(live, obj, own.manager)
}

// managerOrUserAgent is the manager of an Update: ?fieldManager=, or else the user agent up to
// its first "/", printable characters only, at most 128 bytes (kube's prefixFromUserAgent).
func managerOrUserAgent(manager, userAgent string) string {
	if manager != "" {
		return manager
	}
	if i := bytes.IndexByte([]byte(userAgent), '/'); i >= 0 {
		userAgent = userAgent[:i]
	}
	var buf bytes.Buffer
	for _, r := range userAgent {
		if !unicode.IsPrint(r) {
			continue
		}
		if buf.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		buf.WriteRune(r)
	}
	return buf.String()
}

// writeOwner parses and validates ?fieldManager= (and, for patches, ?force=) of a create
// ("CreateOptions"), update ("UpdateOptions") or patch of type pt ("PatchOptions"), with
// kube's 422 errors, and returns the field owner of the write and the force flag.
func writeOwner(r *http.Request, optionsKind string, pt types.PatchType) (fieldOwner, bool, error) {
	q := r.URL.Query()
	var manager string
	var force *bool
	var errs field.ErrorList
	decode := func(into runtime.Object) error {
		if err := metainternalversionscheme.ParameterCodec.DecodeParameters(q, metav1.SchemeGroupVersion, into); err != nil {
			return apierrors.NewBadRequest(err.Error())
		}
		return nil
	}
	switch optionsKind {
	case "PatchOptions":
		o := &metav1.PatchOptions{}
		if err := decode(o); err != nil {
			return fieldOwner{}, false, err
		}
		manager, force = o.FieldManager, o.Force
		errs = metav1validation.ValidatePatchOptions(o, pt)
	case "UpdateOptions":
		o := &metav1.UpdateOptions{}
		if err := decode(o); err != nil {
			return fieldOwner{}, false, err
		}
		manager = o.FieldManager
		errs = metav1validation.ValidateUpdateOptions(o)
	default:
		o := &metav1.CreateOptions{}
		if err := decode(o); err != nil {
			return fieldOwner{}, false, err
		}
		manager = o.FieldManager
		errs = metav1validation.ValidateCreateOptions(o)
	}
	if len(errs) > 0 {
		return fieldOwner{}, false, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: optionsKind}, "", errs)
	}
	if pt == types.ApplyYAMLPatchType || pt == types.ApplyCBORPatchType {
		return fieldOwner{manager: manager}, force != nil && *force, nil
	}
	return fieldOwner{manager: managerOrUserAgent(manager, r.UserAgent())}, false, nil
}

// timestampEqualities compare objects ignoring the times of managedFields entries.
var timestampEqualities = sync.OnceValue(func() conversion.Equalities {
	eqs := apiequality.Semantic.Copy()
	if err := eqs.AddFunc(func(a, b metav1.ManagedFieldsEntry) bool {
		a.Time, b.Time = nil, nil
		return reflect.DeepEqual(a, b)
	}); err != nil {
		panic(err)
	}
	return eqs
})

// keepManagedFieldsTimes reverts changes to managedFields timestamps when nothing else about
// the object changed, so that a no-op write stays a no-op (kube's
// IgnoreManagedFieldsTimestampsTransformer).
func keepManagedFieldsTimes(obj, old runtime.Object) {
	nm, err1 := meta.Accessor(obj)
	om, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return
	}
	newMF, oldMF := nm.GetManagedFields(), om.GetManagedFields()
	if len(newMF) != len(oldMF) || len(newMF) == 0 {
		return
	}
	changed := false
	for i := range newMF {
		if !newMF[i].Time.Equal(oldMF[i].Time) {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	eq := timestampEqualities()
	if !eq.DeepEqual(oldMF, newMF) || !eq.DeepEqual(obj, old) {
		return
	}
	for i := range oldMF {
		newMF[i].Time = oldMF[i].Time
	}
	nm.SetManagedFields(newMF)
}
