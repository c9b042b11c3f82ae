package apiserver

import (
	"bytes"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubesvc/internal/printers"
	"kubesvc/internal/resource"
)

// toTable renders objs as a meta.k8s.io/v1 Table, with the row objects kube-apiserver's
// includeObject parameter asks for (PartialObjectMetadata by default).
func (s *Server) toTable(r *http.Request, info *resource.Info, objs []runtime.Object, lm metav1.ListMeta, headers bool) (*metav1.Table, error) {
	include, err := includeObject(r)
	if err != nil {
		return nil, err
	}
	p := printers.For(info.GroupResource())
	t := &metav1.Table{ListMeta: lm}
	t.APIVersion, t.Kind = metav1.SchemeGroupVersion.String(), "Table"
	if headers {
		t.ColumnDefinitions = p.Columns
	} else {
		t.ColumnDefinitions = []metav1.TableColumnDefinition{}
	}
	now := s.now()
	t.Rows = make([]metav1.TableRow, 0, len(objs))
	for _, obj := range objs {
		cells, err := p.Cells(obj, now)
		if err != nil {
			return nil, err
		}
		row := metav1.TableRow{Cells: cells}
		var embed runtime.Object
		switch include {
		case metav1.IncludeObject:
			embed = obj
		case metav1.IncludeMetadata:
			embed = partialMetadata(info, obj)
		}
		if embed != nil {
			// RawExtension marshals only Raw: encode the row object here, as kube does.
			var buf bytes.Buffer
			if err := jsonSerializer.Encode(embed, &buf); err != nil {
				return nil, err
			}
			row.Object.Raw = bytes.TrimSpace(buf.Bytes())
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

func errIncludeObject(v metav1.IncludeObjectPolicy) error {
	return apierrors.NewBadRequest("includeObject: Unsupported value: \"" + string(v) + "\": supported values: \"None\", \"Metadata\", \"Object\"")
}
