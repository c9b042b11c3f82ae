package apiserver

import (
	"bytes"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// applyPatch applies a patch of type pt to the JSON of cur and decodes the result.
func (s *Server) applyPatch(w http.ResponseWriter, cur runtime.Object, pt types.PatchType, patch []byte, into func() runtime.Object, gvk schema.GroupVersionKind, fv string) (runtime.Object, error) {
	var buf bytes.Buffer
	if err := jsonSerializer.Encode(cur, &buf); err != nil {
		return nil, err
	}
	original := buf.Bytes()
	var patched []byte
	var err error
	switch pt {
	case types.JSONPatchType:
		p, perr := jsonpatch.DecodePatch(patch)
		if perr != nil {
			return nil, apierrors.NewBadRequest(perr.Error())
		}
		patched, err = p.Apply(original)
		if err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(original, patch, into())
		if err != nil {
			if mergepatchErr(err) {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	default:
		return nil, errUnsupportedMediaType(string(pt))
	}
	dec, _ := decoderFor(mimeJSON)
	return s.decodeWith(w, dec, patched, into(), gvk, fv)
}

func mergepatchErr(err error) bool {
	return err != nil && (bytes.Contains([]byte(err.Error()), []byte("invalid character")) || bytes.Contains([]byte(err.Error()), []byte("cannot unmarshal")))
}

func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	wo, err := parseWriteOptions(r)
	if err != nil {
		return err
	}
	pt := types.PatchType(trimContentType(r.Header.Get("Content-Type")))
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType:
		return s.serveApply(w, r, ri, wo)
	default:
		return errUnsupportedPatchType()
	}
	own, _, err := writeOwner(r, "PatchOptions", pt)
	if err != nil {
		return err
	}
	patch, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	gvk := ri.info.GroupVersionKind()
	// A merge or strategic-merge patch that does not mention managedFields leaves them as
	// they are, so they need not go through the JSON round trip (about 1 KB per object).
	keepManaged := pt != types.JSONPatchType && !bytes.Contains(patch, []byte("managedFields"))
	out, _, err := s.update(r.Context(), ri, func(cur runtime.Object) (runtime.Object, error) {
		var managed []metav1.ManagedFieldsEntry
		if keepManaged {
			m, _ := meta.Accessor(cur) // cur is a private copy
			managed = m.GetManagedFields()
			m.SetManagedFields(nil)
		}
		obj, err := s.applyPatch(w, cur, pt, patch, ri.info.New, gvk, wo.fieldValidation)
		if err != nil {
			return nil, err
		}
		if keepManaged {
			m, _ := meta.Accessor(obj)
			m.SetManagedFields(managed)
		}
		return obj, checkPatchedObject(obj, ri, cur)
	}, nil, wo.dryRun, own)
	if err != nil {
		return err
	}
	return s.respond(w, r, ri, http.StatusOK, out)
}
