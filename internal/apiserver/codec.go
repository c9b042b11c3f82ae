package apiserver

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

const (
	mimeJSON     = "application/json"
	mimeYAML     = "application/yaml"
	mimeProtobuf = "application/vnd.kubernetes.protobuf"
)

var (
	jsonSerializer       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
	strictJSONSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Strict: true})
	yamlSerializer       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true})
	strictYAMLSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	protoSerializer      = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
)

// outputKind is what the client asked the response to be.
type outputKind int

const (
	outputObject outputKind = iota
	outputTable
	outputPartialMetadata
)

// negotiated is the result of reading the Accept header.
type negotiated struct {
	mediaType string // mimeJSON, mimeYAML or mimeProtobuf
	output    outputKind
}

// negotiate picks the first acceptable media type of the Accept header, honouring the
// as=Table and as=PartialObjectMetadata(List) conversions of meta.k8s.io.
func negotiate(accept string) (negotiated, bool) {
	if strings.TrimSpace(accept) == "" {
		return negotiated{mediaType: mimeJSON}, true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		var n negotiated
		switch mt {
		case mimeJSON, "*/*", "application/*":
			n.mediaType = mimeJSON
		case mimeYAML:
			n.mediaType = mimeYAML
		case mimeProtobuf:
			n.mediaType = mimeProtobuf
		default:
			continue
		}
		switch params["as"] {
		case "":
		case "Table":
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			n.output = outputTable
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			n.output = outputPartialMetadata
		default:
			continue
		}
		return n, true
	}
	return negotiated{}, false
}

// writeObject encodes obj in the negotiated media type (JSON when none fits) with the code.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	n, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		n = negotiated{mediaType: mimeJSON}
	}
	ensureKind(obj)
	var buf bytes.Buffer
	var err error
	if _, isTable := obj.(*metav1.Table); isTable && n.mediaType == mimeProtobuf {
		n.mediaType = mimeJSON // row objects are embedded as JSON
	}
	switch n.mediaType {
	case mimeProtobuf:
		if err = protoSerializer.Encode(obj, &buf); err != nil {
			buf.Reset()
			n.mediaType = mimeJSON
			err = jsonSerializer.Encode(obj, &buf)
		}
	case mimeYAML:
		err = yamlSerializer.Encode(obj, &buf)
	default:
		err = jsonSerializer.Encode(obj, &buf)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", n.mediaType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// ensureKind sets apiVersion/kind on objects that lack them (lists, Status, Tables).
func ensureKind(obj runtime.Object) {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err == nil && len(gvks) > 0 {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		return
	}
	switch obj.(type) {
	case *metav1.Table:
		obj.GetObjectKind().SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Table"))
	case *metav1.Status:
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Status"})
	}
}

// bodyDecoder decodes request bodies of one content type.
type bodyDecoder struct {
	lax, strict runtime.Decoder
	mediaType   string
}

func decoderFor(contentType string) (bodyDecoder, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return bodyDecoder{}, false
	}
	switch mt {
	case "", mimeJSON:
		return bodyDecoder{lax: jsonSerializer, strict: strictJSONSerializer, mediaType: mimeJSON}, true
	case mimeYAML, "application/x-yaml", "text/yaml":
		return bodyDecoder{lax: yamlSerializer, strict: strictYAMLSerializer, mediaType: mimeYAML}, true
	case mimeProtobuf:
		return bodyDecoder{lax: protoSerializer, strict: protoSerializer, mediaType: mimeProtobuf}, true
	}
	return bodyDecoder{}, false
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}
