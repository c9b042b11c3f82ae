package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// errUnsupportedPatchType answers a PATCH whose content type is none of json-patch,
// merge-patch, strategic-merge-patch and apply-patch+yaml as kube-apiserver does (its router
// rejects it before the handler). apply-patch+cbor is among them: kube-apiserver 1.37 accepts
// it only behind the alpha feature gate CBORServingAndStorage.
func errUnsupportedPatchType() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: "415: Unsupported Media Type",
	}}
}

// serveApply serves server-side apply (PATCH with application/apply-patch+yaml) of a resource
// or its status, as kube-apiserver's applyPatcher does: ?fieldManager= is required, the
// applied configuration is merged into the live object by the field manager (409 on conflicts
// unless ?force=true), and a missing object is created through the normal create path.
func (s *Server) serveApply(w http.ResponseWriter, r *http.Request, ri requestInfo, wo writeOptions) error {
	apply, err := s.applier(r, ri, wo, ri.subresource)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out, _, err := s.update(ctx, ri, func(cur runtime.Object) (runtime.Object, error) {
		return apply(ctx, cur)
	}, nil, wo.dryRun, fieldOwner{done: true})
	code := http.StatusOK
	if apierrors.IsNotFound(err) && (ri.subresource == "" || ri.subresource == "status" && allowCreateOnUpdate[ri.info.Resource]) {
		// Create on apply: merge into an empty object, then the create path. Like
		// kube-apiserver, an apply to the status of a missing object of a kind that allows
		// create-on-update creates it too.
		var obj runtime.Object
		if obj, err = apply(ctx, ri.info.New()); err != nil {
			return err
		}
		out, err = s.create(ctx, ri, obj, wo.dryRun, fieldOwner{done: true})
		code = http.StatusCreated
	}
	if err != nil {
		return err
	}
	return s.respond(w, r, ri, code, out)
}

// applyFunc merges the applied configuration into live (a private copy) and returns the result.
type applyFunc func(ctx context.Context, live runtime.Object) (runtime.Object, error)

// applier reads an apply request (options and body) to the field manager of subresource.
func (s *Server) applier(r *http.Request, ri requestInfo, wo writeOptions, subresource string) (applyFunc, error) {
	own, force, err := writeOwner(r, "PatchOptions", types.ApplyYAMLPatchType)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if _, err := yaml.YAMLToJSON(body); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error encoding patch: %v", err))
	}
	fm, err := s.fieldManager(ri.info, subresource)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, live runtime.Object) (runtime.Object, error) {
		patchObj := &unstructured.Unstructured{Object: map[string]any{}}
		if err := yaml.Unmarshal(body, &patchObj.Object); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
		}
		obj, err := fm.Apply(live, patchObj, own.manager, force)
		if err != nil {
			return nil, statusOf(err)
		}
		if wo.fieldValidation != "Ignore" {
			if err := yaml.UnmarshalStrict(body, &map[string]any{}); err != nil {
				if wo.fieldValidation == "Strict" {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding patch: %v", err))
				}
				for _, w := range yamlWarnings(err.Error()) {
					addWarning(ctx, w)
				}
			}
		}
		return obj, checkPatchedObject(obj, ri, live)
	}, nil
}

// checkPatchedObject checks a patched object against the request as kube's patcher does:
// an object created by the patch may not name a uid, the namespace must be the request's
// (filled in when empty), and the name must be the URL's.
func checkPatchedObject(obj runtime.Object, ri requestInfo, live runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if lm, err := meta.Accessor(live); err == nil && lm.GetUID() == "" && m.GetUID() != "" {
		return apierrors.NewConflict(ri.info.GroupResource(), ri.name, fmt.Errorf("uid mismatch: the provided object specified uid %s, and no existing object was found", m.GetUID()))
	}
	ns := ri.namespace
	if ri.info.Group == "" && ri.info.Resource == "namespaces" {
		ns = ""
	}
	switch objNS := m.GetNamespace(); {
	case objNS == ns:
	case objNS == "":
		m.SetNamespace(ns)
	case ns == "":
		m.SetNamespace("")
	default:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if m.GetName() != ri.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.name))
	}
	return nil
}

// statusOf returns err as an API status: kube-apiserver answers errors that are not a
// Status with 500, reason unknown and the error text (responsewriters.ErrorToAPIStatus).
func statusOf(err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return err
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Reason: metav1.StatusReasonUnknown, Message: err.Error(),
	}}
}

// yamlWarnings splits a strict YAML decoding error into one warning per problem (kube's
// parseYAMLWarnings).
func yamlWarnings(msg string) []string {
	for _, prefix := range []string{"yaml: unmarshal errors:\n", "error converting YAML to JSON: yaml: unmarshal errors:\n"} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			parts := strings.Split(rest, "\n")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			return parts
		}
	}
	return []string{msg}
}
