// Package printers renders served objects as meta.k8s.io/v1 Table rows with exactly the columns
// and cell strings kube-apiserver v1.37 prints, so that `kubectl get` against kubesvc looks the
// same as against a real cluster.
//
// It is a port, over the v1 types, of kubernetes/kubernetes v1.37.2
// pkg/printers/internalversion/printers.go (AddHandlers and the print* functions), of
// pkg/printers/storage/storage.go (the server always generates tables with Wide=true, so every
// priority-1 column is filled and load-balancer addresses are never clipped), and of
// staging/src/k8s.io/apiserver/pkg/registry/rest/table.go (the default table convertor used for
// resources kube has no printer for).
//
// kube-apiserver prints objects after v1 defaulting, so where a printed field has a default
// (service type, port protocol, replicas, ...) the printers apply it. testdata/printdiff holds a
// differential test against the real v1.37.2 printers.
//
// Any package under internal/ may import it; it imports only k8s.io/api and apimachinery (its
// tests also use internal/resource). Everything here is immutable after package init and safe for
// concurrent use.
package printers

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// ErrUnexpectedType is returned (wrapped) when a Printer is handed an object of a type it does
// not print, or a nil object.
var ErrUnexpectedType = errors.New("printers: unexpected object type")

// Printer renders one resource's rows.
//
// Columns includes the wide columns (Priority 1) in kube's order, with Name, Type, Format and
// Description exactly as kube-apiserver's column definitions. Callers must not modify a Printer
// returned by For; it is shared.
type Printer struct {
	Columns []metav1.TableColumnDefinition
	// Cells returns one row's cells (len == len(Columns)) for obj at time now (for Age columns).
	// Cells are string or int64, as kube-apiserver encodes them.
	Cells func(obj runtime.Object, now time.Time) ([]any, error)
	// Conditions, when non-nil, returns the row conditions kube-apiserver attaches to obj's row
	// (only pods have them: Completed for Succeeded and Failed pods). A nil func means none.
	Conditions func(obj runtime.Object) []metav1.TableRowCondition
}

// Row returns obj's table row: its cells and any row conditions. Row.Object is left empty;
// the caller fills it according to the request's includeObject.
func (p *Printer) Row(obj runtime.Object, now time.Time) (metav1.TableRow, error) {
	cells, err := p.Cells(obj, now)
	if err != nil {
		return metav1.TableRow{}, err
	}
	row := metav1.TableRow{Cells: cells}
	if p.Conditions != nil {
		row.Conditions = p.Conditions(obj)
	}
	return row, nil
}

// Rows returns one row per item when obj is a list, or a single row otherwise. Each row's
// Object is the item itself, as kube's printers set it; the caller may replace it (for example
// with PartialObjectMetadata).
func (p *Printer) Rows(obj runtime.Object, now time.Time) ([]metav1.TableRow, error) {
	if !meta.IsListType(obj) {
		row, err := p.Row(obj, now)
		if err != nil {
			return nil, err
		}
		row.Object = runtime.RawExtension{Object: obj}
		return []metav1.TableRow{row}, nil
	}
	var rows []metav1.TableRow
	err := meta.EachListItem(obj, func(item runtime.Object) error {
		row, err := p.Row(item, now)
		if err != nil {
			return err
		}
		row.Object = runtime.RawExtension{Object: item}
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("print %T: %w", obj, err)
	}
	return rows, nil
}

// For returns the printer of a resource. Resources kube has no printer for get kube's default
// table convertor: columns "Name" (format name) and "Created At" (type date), with the creation
// time in RFC 3339, UTC. For never returns nil.
func For(gr schema.GroupResource) *Printer {
	if p, ok := byResource[gr]; ok {
		return p
	}
	return defaultPrinter
}

var swaggerMeta = metav1.ObjectMeta{}.SwaggerDoc()

// defaultPrinter follows k8s.io/apiserver/pkg/registry/rest/table.go, defaultTableConvertor.
var defaultPrinter = &Printer{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: swaggerMeta["name"]},
		{Name: "Created At", Type: "date", Description: swaggerMeta["creationTimestamp"]},
	},
	Cells: func(obj runtime.Object, _ time.Time) ([]any, error) {
		if isNil(obj) {
			return nil, fmt.Errorf("%w: nil object", ErrUnexpectedType)
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, fmt.Errorf("%w: %T has no object metadata: %w", ErrUnexpectedType, obj, err)
		}
		return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
	},
}

// typed adapts a printer function over one concrete type to Printer.Cells.
func typed[T runtime.Object](cells func(obj T, now time.Time) []any) func(runtime.Object, time.Time) ([]any, error) {
	return func(obj runtime.Object, now time.Time) ([]any, error) {
		o, ok := obj.(T)
		if !ok || isNil(obj) {
			var want T
			return nil, fmt.Errorf("%w: got %T, want %T", ErrUnexpectedType, obj, want)
		}
		return cells(o, now), nil
	}
}

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// age is upstream's translateTimestampSince with an injected clock: "<unknown>" for a zero
// time, otherwise duration.HumanDuration of the time elapsed.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// microAge is upstream's translateMicroTimestampSince.
func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}
