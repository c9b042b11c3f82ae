package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"

	"kubesvc/internal/printers"
	"kubesvc/internal/resource"
)

// Lists are written item by item, as kube-apiserver 1.37 does (apimachinery's streaming
// collection encoders): the items are the storage's own objects, never copied into a typed
// list, and the response is never encoded whole into one buffer. The bytes are those of a
// normal encode of the typed list (list_test.go compares them).

// objectList is a list of any kind over shared storage objects. Its shape (TypeMeta,
// ListMeta with protobuf field 1, items with field 2) is what apimachinery's streaming JSON
// and protobuf encoders require of a list; they take the items through meta.ExtractList.
type objectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`
	Items           []runtime.Object `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// DeepCopyObject implements runtime.Object.
func (l *objectList) DeepCopyObject() runtime.Object {
	out := &objectList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]runtime.Object, len(l.Items))
		for i, it := range l.Items {
			out.Items[i] = it.DeepCopyObject()
		}
	}
	return out
}

var (
	streamingJSON  = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{StreamingCollectionsEncoding: true})
	streamingProto = protobuf.NewSerializerWithOptions(scheme.Scheme, scheme.Scheme, protobuf.SerializerOptions{StreamingCollectionsEncoding: true})
)

// protoSizer is what the streaming protobuf encoder needs of every item.
type protoSizer interface{ Size() int }

// writeList writes a list of kind gvk holding items, item by item, in the negotiated media
// type. YAML, and protobuf for items without a protobuf form, take the buffered path. Nil
// items are "items":null in JSON, empty ones "items":[].
func (s *Server) writeList(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind, lm metav1.ListMeta, items []runtime.Object) {
	l := &objectList{ListMeta: lm, Items: items}
	l.SetGroupVersionKind(gvk)
	n, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		n = negotiated{mediaType: mimeJSON}
	}
	var enc runtime.Encoder
	switch n.mediaType {
	case mimeJSON:
		enc = streamingJSON
	case mimeProtobuf:
		enc = streamingProto
		for _, it := range items {
			if _, ok := it.(protoSizer); !ok {
				enc = nil
				break
			}
		}
	}
	if enc == nil {
		s.writeObject(w, r, http.StatusOK, l)
		return
	}
	rb := newResponseBuffer(w, n.mediaType, http.StatusOK)
	defer rb.release()
	alloc := runtime.AllocatorPool.Get().(*runtime.Allocator)
	defer runtime.AllocatorPool.Put(alloc)
	var err error
	if ae, ok := enc.(runtime.EncoderWithAllocator); ok {
		err = ae.EncodeWithAllocator(l, rb, alloc)
	} else {
		err = enc.Encode(l, rb)
	}
	if err != nil {
		rb.fail(err)
		return
	}
	rb.finish()
}

// writeTable writes objs as a meta.k8s.io/v1 Table (JSON), row by row, with the row objects
// the includeObject parameter asks for. The bytes are those of encoding/json on the Table
// toTable builds.
func (s *Server) writeTable(w http.ResponseWriter, r *http.Request, info *resource.Info, objs []runtime.Object, lm metav1.ListMeta) error {
	include, err := includeObject(r)
	if err != nil {
		return err
	}
	p := printers.For(info.GroupResource())
	// The members before the rows: encode the Table without rows and cut before "[]}".
	head := &metav1.Table{ListMeta: lm, ColumnDefinitions: p.Columns, Rows: []metav1.TableRow{}}
	head.APIVersion, head.Kind = metav1.SchemeGroupVersion.String(), "Table"
	rb := newResponseBuffer(w, mimeJSON, http.StatusOK)
	defer rb.release()
	tw := newTableWriter(rb)
	if err := tw.enc.Encode(head); err != nil {
		return err
	}
	prefix := bytes.TrimSuffix(tw.scratch.Bytes(), []byte("[]}\n"))
	if len(prefix) == tw.scratch.Len() {
		return errTableShape
	}
	_, _ = rb.Write(prefix)
	_, _ = rb.Write([]byte("["))
	now := s.now()
	for i, obj := range objs {
		cells, err := p.Cells(obj, now)
		if err != nil {
			if i == 0 {
				return err
			}
			rb.fail(err)
			return nil
		}
		var embed runtime.Object
		switch include {
		case metav1.IncludeObject:
			embed = obj
		case metav1.IncludeMetadata:
			embed = partialMetadata(info, obj)
		}
		if err := tw.row(i > 0, cells, embed); err != nil {
			rb.fail(err)
			return nil
		}
	}
	_, _ = rb.Write([]byte("]}\n"))
	rb.finish()
	return nil
}

var errTableShape = &tableShapeError{}

type tableShapeError struct{}

func (*tableShapeError) Error() string { return "encode table: unexpected JSON shape" }

// tableWriter encodes Table rows with encoding/json, as a whole-Table encode would.
type tableWriter struct {
	w       *responseBuffer
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newTableWriter(w *responseBuffer) *tableWriter {
	t := &tableWriter{w: w}
	t.enc = json.NewEncoder(&t.scratch)
	return t
}

// row writes one TableRow: {"cells":[...],"object":...}. Conditions are never set by our
// printers. The row object is what jsonSerializer.Encode gives for it, which is already
// compact and HTML-escaped: encoding/json's pass over a RawExtension's bytes leaves it as is.
func (t *tableWriter) row(comma bool, cells []any, embed runtime.Object) error {
	t.scratch.Reset()
	if comma {
		t.scratch.WriteByte(',')
	}
	t.scratch.WriteString(`{"cells":`)
	if err := t.enc.Encode(cells); err != nil {
		return err
	}
	t.scratch.Truncate(t.scratch.Len() - 1) // the Encoder's newline
	t.scratch.WriteString(`,"object":`)
	if embed == nil {
		t.scratch.WriteString("null")
	} else {
		if err := t.enc.Encode(embed); err != nil {
			return err
		}
		t.scratch.Truncate(t.scratch.Len() - 1)
	}
	t.scratch.WriteByte('}')
	_, err := t.w.Write(t.scratch.Bytes())
	return err
}

// includeObject reads the includeObject parameter of Table requests (Metadata by default).
func includeObject(r *http.Request) (metav1.IncludeObjectPolicy, error) {
	switch v := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); v {
	case "":
		return metav1.IncludeMetadata, nil
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		return v, nil
	default:
		return "", errIncludeObject(v)
	}
}

// responseBuffer holds the start of a response: a response that fits its buffer goes out
// at the end with a Content-Length, like writeObject's; a larger one is streamed once the
// buffer fills. Not safe for concurrent use.
type responseBuffer struct {
	w       http.ResponseWriter
	code    int
	buf     *[]byte
	started bool
	err     error
}

const responseBufferSize = 64 << 10

var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, responseBufferSize); return &b }}

func newResponseBuffer(w http.ResponseWriter, mediaType string, code int) *responseBuffer {
	w.Header().Set("Content-Type", mediaType)
	return &responseBuffer{w: w, code: code, buf: responseBuffers.Get().(*[]byte)}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	buf := *b.buf
	if len(buf)+len(p) <= cap(buf) {
		*b.buf = append(buf, p...)
		return len(p), nil
	}
	if err := b.flush(); err != nil {
		return 0, err
	}
	if len(p) >= cap(buf) {
		if _, err := b.w.Write(p); err != nil {
			b.err = err
			return 0, err
		}
		return len(p), nil
	}
	*b.buf = append((*b.buf)[:0], p...)
	return len(p), nil
}

func (b *responseBuffer) flush() error {
	if !b.started {
		b.w.WriteHeader(b.code)
		b.started = true
	}
	if len(*b.buf) > 0 {
		if _, err := b.w.Write(*b.buf); err != nil {
			b.err = err
			return err
		}
		*b.buf = (*b.buf)[:0]
	}
	return nil
}

// finish sends what is buffered.
func (b *responseBuffer) finish() {
	if b.err != nil {
		return
	}
	if !b.started {
		b.w.Header().Set("Content-Length", strconv.Itoa(len(*b.buf)))
	}
	_ = b.flush()
}

// fail ends a response whose encoding failed. Before anything was sent it is a 500; after,
// the connection is aborted so the client sees a broken response, not a short list.
func (b *responseBuffer) fail(err error) {
	if b.err != nil {
		return // writing to the client failed (it went away): nothing more to send
	}
	b.err = err
	klog.ErrorS(err, "encode list response")
	if !b.started {
		http.Error(b.w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	panic(http.ErrAbortHandler)
}

func (b *responseBuffer) release() {
	if cap(*b.buf) <= responseBufferSize {
		*b.buf = (*b.buf)[:0]
		responseBuffers.Put(b.buf)
	}
	b.buf = nil
}
