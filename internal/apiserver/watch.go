package apiserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"kubesvc/internal/storage"
)

// bookmarkInterval is how often a watch that allows bookmarks gets one.
const bookmarkInterval = 30 * time.Second

func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	opts, err := s.listOptions(r, ri)
	if err != nil {
		return err
	}
	n, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		return errNotAcceptable()
	}
	var rv int64
	if opts.ResourceVersion != "" {
		rv, err = strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil || rv < 0 {
			return apierrors.NewBadRequest("invalid resource version: " + opts.ResourceVersion)
		}
	}
	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	watcher, err := s.store.Watch(r.Context(), ri.info, storage.WatchOptions{
		ResourceVersion:   rv,
		SendInitialEvents: sendInitial,
		Prefix:            s.store.ListPrefix(ri.info, ri.namespace),
		Filter:            s.filter(ri.info, opts),
	})
	if errors.Is(err, storage.ErrExpired) {
		return s.writeWatchError(w, r, ri, n, err)
	}
	if err != nil {
		return err
	}
	defer watcher.Stop()

	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var bookmarks <-chan time.Time
	if opts.AllowWatchBookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		bookmarks = t.C
	}

	enc := &watchEncoder{s: s, r: r, ri: ri, output: n.output, protobuf: n.mediaType == mimeProtobuf && n.output == outputObject}
	if enc.protobuf {
		w.Header().Set("Content-Type", mimeProtobuf+";stream=watch")
	} else {
		w.Header().Set("Content-Type", mimeJSON)
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	for _, ev := range watcher.Initial() {
		if err := enc.write(bw, ev); err != nil {
			return nil
		}
	}
	if err := flush(); err != nil {
		return nil
	}
	ch := watcher.ResultChan()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				_ = flush()
				return nil
			}
			if err := enc.write(bw, ev); err != nil {
				return nil
			}
			if len(ch) == 0 {
				if err := flush(); err != nil {
					return nil
				}
			}
		case <-bookmarks:
			if err := enc.write(bw, watcher.Bookmark()); err != nil || flush() != nil {
				return nil
			}
		case <-timer.C:
			_ = flush()
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

// writeWatchError answers a valid watch whose resourceVersion expired as kube-apiserver's watch
// cache does: 200 and one ERROR event carrying the 410 Status (client-go's RetryWatcher stops on
// that event but retries a plain 410 response forever).
func (s *Server) writeWatchError(w http.ResponseWriter, r *http.Request, ri requestInfo, n negotiated, err error) error {
	st := toAPIError(err, ri.info.GroupResource(), ri.name).(apierrors.APIStatus).Status()
	st.Kind, st.APIVersion = "Status", "v1"
	enc := &watchEncoder{s: s, r: r, ri: ri, output: n.output, protobuf: n.mediaType == mimeProtobuf && n.output == outputObject}
	if enc.protobuf {
		w.Header().Set("Content-Type", mimeProtobuf+";stream=watch")
	} else {
		w.Header().Set("Content-Type", mimeJSON)
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	if err := enc.write(bw, watch.Event{Type: watch.Error, Object: &st}); err == nil {
		_ = bw.Flush()
	}
	return nil
}

// watchEncoder writes watch events in the negotiated form.
type watchEncoder struct {
	s        *Server
	r        *http.Request
	ri       requestInfo
	output   outputKind
	protobuf bool
	sentCols bool
}

func (e *watchEncoder) object(ev watch.Event) (runtime.Object, error) {
	if ev.Type == watch.Error {
		return ev.Object, nil
	}
	if ev.Type == watch.Bookmark {
		if e.output == outputPartialMetadata {
			// Metadata-only clients decode only PartialObjectMetadata, bookmarks included.
			return partialMetadata(e.ri.info, ev.Object), nil
		}
		return ev.Object, nil
	}
	switch e.output {
	case outputTable:
		t, err := e.s.toTable(e.r, e.ri.info, []runtime.Object{ev.Object}, metav1.ListMeta{ResourceVersion: accessorRV(ev.Object)}, !e.sentCols)
		e.sentCols = true
		return t, err
	case outputPartialMetadata:
		return partialMetadata(e.ri.info, ev.Object), nil
	}
	return ev.Object, nil
}

func (e *watchEncoder) write(w *bufio.Writer, ev watch.Event) error {
	obj, err := e.object(ev)
	if err != nil {
		return err
	}
	// Plain objects from storage are shared by every watcher: encode each once.
	cacheable := e.output == outputObject && ev.Type != watch.Bookmark
	encode := func() ([]byte, error) {
		var buf bytes.Buffer
		if e.protobuf {
			err := protoSerializer.Encode(obj, &buf)
			return buf.Bytes(), err
		}
		ensureKind(obj)
		err := jsonSerializer.Encode(obj, &buf)
		return bytes.TrimRight(buf.Bytes(), "\n"), err
	}
	var data []byte
	if cacheable {
		data, err = e.s.encCache.get(obj, e.protobuf, encode)
	} else {
		data, err = encode()
	}
	if err != nil {
		return err
	}
	if e.protobuf {
		we := metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: data}}
		frame, err := we.Marshal()
		if err != nil {
			return err
		}
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(frame)))
		if _, err := w.Write(l[:]); err != nil {
			return err
		}
		_, err = w.Write(frame)
		return err
	}
	typ, _ := json.Marshal(string(ev.Type))
	w.WriteString(`{"type":`)
	w.Write(typ)
	w.WriteString(`,"object":`)
	w.Write(data)
	_, err = w.WriteString("}\n")
	return err
}
