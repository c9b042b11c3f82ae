// Package storage keeps API objects in etcd, one key per object, resourceVersion = etcd mod
// revision, and fans etcd watches out to API watchers through one watch cache per resource.
//
// Objects are stored as Kubernetes protobuf (the "k8s\x00" envelope) like kube-apiserver does.
// Objects returned by the Store and delivered on watches may be shared: callers must DeepCopy
// before mutating. Only internal/apiserver and the server wiring import this package.
package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"

	"kubesvc/internal/resource"
)

// Config configures a Store.
type Config struct {
	// Client is the etcd client; the Store does not close it.
	Client *clientv3.Client
	// Prefix of every key, default "/registry".
	Prefix string
	// WatchWindow is how many recent events each resource's watch cache keeps for watchers
	// resuming from an older resourceVersion. Default 10000.
	WatchWindow int
}

// Store is the object store. It is safe for concurrent use.
type Store struct {
	client *clientv3.Client
	prefix string
	window int
	proto  *protobuf.Serializer

	mu      sync.Mutex
	cachers map[*resource.Info]*cacher
	ctx     context.Context
	cancel  context.CancelFunc
}

// New returns a Store. Watch caches start lazily on first use of a resource, or all at once
// with StartCaches.
func New(cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = "/registry"
	}
	if cfg.WatchWindow <= 0 {
		cfg.WatchWindow = 10000
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		client:  cfg.Client,
		prefix:  strings.TrimSuffix(cfg.Prefix, "/"),
		window:  cfg.WatchWindow,
		proto:   protobuf.NewSerializer(scheme.Scheme, scheme.Scheme),
		cachers: map[*resource.Info]*cacher{},
		ctx:     ctx,
		cancel:  cancel,
	}
}

// Close stops every watch cache; open watches end.
func (s *Store) Close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cachers {
		c.stop()
	}
}

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.client }

// ResourcePrefix returns the key prefix of a resource, ending in "/".
func (s *Store) ResourcePrefix(info *resource.Info) string {
	if info.Group == "" {
		return s.prefix + "/" + info.Resource + "/"
	}
	return s.prefix + "/" + info.Group + "/" + info.Resource + "/"
}

// Key returns the key of one object; ns is empty for cluster-scoped resources.
func (s *Store) Key(info *resource.Info, ns, name string) string {
	if info.Namespaced {
		return s.ResourcePrefix(info) + ns + "/" + name
	}
	return s.ResourcePrefix(info) + name
}

// ListPrefix returns the prefix of a list: the resource's or one namespace's.
func (s *Store) ListPrefix(info *resource.Info, ns string) string {
	if info.Namespaced && ns != "" {
		return s.ResourcePrefix(info) + ns + "/"
	}
	return s.ResourcePrefix(info)
}

func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := s.proto.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	return buf.Bytes(), nil
}

func (s *Store) decode(info *resource.Info, data []byte, rev int64) (runtime.Object, error) {
	into := info.New()
	obj, _, err := s.proto.Decode(data, nil, into)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", info.Resource, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(info.GroupVersionKind())
	setRV(obj, rev)
	return obj, nil
}

func setRV(obj runtime.Object, rev int64) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
}

// prepareForStore returns the bytes to store: resourceVersion cleared, kind set.
func (s *Store) prepareForStore(info *resource.Info, obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	obj.GetObjectKind().SetGroupVersionKind(info.GroupVersionKind())
	data, err := s.encode(obj)
	m.SetResourceVersion(rv)
	return data, err
}

// Txn lets a caller commit extra etcd comparisons and operations atomically with an object
// write (used by the allocators). A nil *Txn adds nothing.
type Txn struct {
	Cmps []clientv3.Cmp
	Ops  []clientv3.Op
	// OnFailure is called when the transaction failed because of one of Cmps (not the object's
	// own precondition); it returns the error to report. Nil: creates fail with ErrRace (the
	// caller redoes the write) and updates re-run their UpdateFunc.
	OnFailure func() error
}

// Create stores obj at key if nothing is there. It returns the stored object with its new
// resourceVersion. With dryRun nothing is written.
func (s *Store) Create(ctx context.Context, info *resource.Info, key string, obj runtime.Object, extra *Txn, dryRun bool) (runtime.Object, error) {
	data, err := s.prepareForStore(info, obj)
	if err != nil {
		return nil, err
	}
	if dryRun {
		resp, err := s.client.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			return nil, err
		}
		if resp.Count > 0 {
			return nil, errorf(ErrExists, key, "%s already exists", key)
		}
		// A dry-run create answers without a resourceVersion, as kube-apiserver does.
		if m, err := meta.Accessor(obj); err == nil {
			m.SetResourceVersion("")
		}
		return obj, nil
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(data))}
	if extra != nil {
		cmps = append(cmps, extra.Cmps...)
		ops = append(ops, extra.Ops...)
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		if extra != nil && len(extra.Cmps) > 0 {
			g, err := s.client.Get(ctx, key, clientv3.WithCountOnly())
			if err == nil && g.Count == 0 {
				if extra.OnFailure != nil {
					return nil, extra.OnFailure()
				}
				return nil, errorf(ErrRace, key, "%s: lost a race for an allocation", key)
			}
		}
		return nil, errorf(ErrExists, key, "%s already exists", key)
	}
	setRV(obj, resp.Header.Revision)
	return obj, nil
}

// Get returns the object at key.
func (s *Store) Get(ctx context.Context, info *resource.Info, key string) (runtime.Object, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, errorf(ErrNotFound, key, "%s not found", key)
	}
	kv := resp.Kvs[0]
	return s.decode(info, kv.Value, kv.ModRevision)
}

// UpdateFunc computes the new object from the current one (a private deep copy). Returning
// an error aborts the update with that error. Returning nil deletes... no: returning a nil
// object with a nil error leaves the object unchanged.
type UpdateFunc func(current runtime.Object) (runtime.Object, *Txn, error)

// GuaranteedUpdate reads the object at key, applies fn and writes the result if the object
// did not change meanwhile, retrying fn on races. If fn returns an object equal (byte for
// byte) to the stored one, nothing is written and the stored object is returned. With dryRun
// nothing is written.
func (s *Store) GuaranteedUpdate(ctx context.Context, info *resource.Info, key string, fn UpdateFunc, dryRun bool) (runtime.Object, error) {
	for attempt := 0; ; attempt++ {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, errorf(ErrNotFound, key, "%s not found", key)
		}
		kv := resp.Kvs[0]
		cur, err := s.decode(info, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		updated, extra, err := fn(cur)
		if err != nil {
			return nil, err
		}
		if updated == nil {
			return cur, nil
		}
		data, err := s.prepareForStore(info, updated)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(data, kv.Value) && extra == nil {
			setRV(updated, kv.ModRevision)
			return updated, nil
		}
		if dryRun {
			setRV(updated, kv.ModRevision)
			return updated, nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)}
		ops := []clientv3.Op{clientv3.OpPut(key, string(data))}
		if extra != nil {
			cmps = append(cmps, extra.Cmps...)
			ops = append(ops, extra.Ops...)
		}
		tr, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		if tr.Succeeded {
			setRV(updated, tr.Header.Revision)
			return updated, nil
		}
		if extra != nil && len(extra.Cmps) > 0 && extra.OnFailure != nil {
			g, err := s.client.Get(ctx, key)
			if err == nil && len(g.Kvs) == 1 && g.Kvs[0].ModRevision == kv.ModRevision {
				return nil, extra.OnFailure()
			}
		}
		if attempt > 100 {
			return nil, errorf(ErrConflict, key, "too many concurrent updates of %s", key)
		}
	}
}

// PreconditionFunc checks the current object before a delete and may return extra operations
// to commit with the deletion (releases of allocations).
type PreconditionFunc func(current runtime.Object) (*Txn, error)

// Delete removes the object at key if pre accepts the current state. It returns the last
// state, with the resourceVersion of the deletion.
func (s *Store) Delete(ctx context.Context, info *resource.Info, key string, pre PreconditionFunc, dryRun bool) (runtime.Object, error) {
	for attempt := 0; ; attempt++ {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, errorf(ErrNotFound, key, "%s not found", key)
		}
		kv := resp.Kvs[0]
		cur, err := s.decode(info, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		var extra *Txn
		if pre != nil {
			if extra, err = pre(cur); err != nil {
				return nil, err
			}
		}
		if dryRun {
			return cur, nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)}
		ops := []clientv3.Op{clientv3.OpDelete(key)}
		if extra != nil {
			cmps = append(cmps, extra.Cmps...)
			ops = append(ops, extra.Ops...)
		}
		tr, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
		if tr.Succeeded {
			setRV(cur, tr.Header.Revision)
			return cur, nil
		}
		if attempt > 100 {
			return nil, errorf(ErrConflict, key, "too many concurrent updates of %s", key)
		}
	}
}

// ListOptions select a list.
type ListOptions struct {
	// ResourceVersion: "" most recent (from etcd), "0" any (from the watch cache), N: at least N
	// (from the cache) or exactly N when Exact or when continuing.
	ResourceVersion string
	Exact           bool
	Limit           int64
	Continue        string
	// Filter keeps objects it returns true for; nil keeps all.
	Filter func(obj runtime.Object) bool
}

// ListResult is one page of a list.
type ListResult struct {
	Items           []runtime.Object
	ResourceVersion int64
	Continue        string
	// RemainingItemCount is set when a page was cut and no filter was applied.
	RemainingItemCount *int64
}

type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

func encodeContinue(key, prefix string, rv int64) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rv, StartKey: strings.TrimPrefix(key, prefix)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(token, prefix string) (string, int64, error) {
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", 0, errorf(ErrInvalidContinue, "", "continue key is not valid: %v", err)
	}
	var c continueToken
	if err := json.Unmarshal(data, &c); err != nil || c.APIVersion != "meta.k8s.io/v1" {
		return "", 0, errorf(ErrInvalidContinue, "", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	if c.ResourceVersion == 0 || strings.Contains(c.StartKey, "..") || strings.HasPrefix(c.StartKey, "/") {
		return "", 0, errorf(ErrInvalidContinue, "", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return prefix + c.StartKey, c.ResourceVersion, nil
}

// List returns the objects under prefix.
func (s *Store) List(ctx context.Context, info *resource.Info, prefix string, opts ListOptions) (*ListResult, error) {
	if opts.Continue != "" || opts.Exact {
		s.mu.Lock()
		c := s.cachers[info]
		s.mu.Unlock()
		if c != nil {
			if res, ok, err := s.listSnapshot(ctx, c, prefix, opts); ok || err != nil {
				return res, err
			}
		}
		return s.listEtcd(ctx, info, prefix, opts)
	}
	var rv int64
	if opts.ResourceVersion == "" {
		// A consistent read served from the watch cache once it has caught up with etcd's
		// current revision (kube-apiserver's ConsistentListFromCache).
		cur, err := s.CurrentRevision(ctx)
		if err != nil {
			return nil, err
		}
		rv = cur
	} else {
		r, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid resourceVersion %q", opts.ResourceVersion)
		}
		rv = r
	}
	c, err := s.cacher(info)
	if err != nil {
		return nil, err
	}
	return s.listCache(ctx, c, prefix, rv, opts)
}

func (s *Store) listEtcd(ctx context.Context, info *resource.Info, prefix string, opts ListOptions) (*ListResult, error) {
	start := prefix
	var rev int64
	if opts.Continue != "" {
		k, r, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, err
		}
		start, rev = k, r
	} else if opts.Exact && opts.ResourceVersion != "" {
		r, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid resourceVersion %q", opts.ResourceVersion)
		}
		rev = r
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	out := &ListResult{}
	batch := opts.Limit
	if batch <= 0 || batch > 10000 {
		batch = 10000
	}
	for {
		gopts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(batch)}
		if rev > 0 {
			gopts = append(gopts, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, start, gopts...)
		if err != nil {
			if isCompacted(err) {
				return nil, expiredList(prefix, opts, rev)
			}
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			obj, err := s.decode(info, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, err
			}
			if opts.Filter != nil && !opts.Filter(obj) {
				continue
			}
			out.Items = append(out.Items, obj)
			if opts.Limit > 0 && int64(len(out.Items)) == opts.Limit {
				more := resp.More || kv != resp.Kvs[len(resp.Kvs)-1]
				if more {
					out.Continue = encodeContinue(string(kv.Key)+"\x00", prefix, rev)
					if opts.Filter == nil {
						// Count what is left, as kube-apiserver does.
						cr, err := s.client.Get(ctx, string(kv.Key)+"\x00", clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithCountOnly())
						if err == nil {
							n := cr.Count
							out.RemainingItemCount = &n
						}
					}
				}
				out.ResourceVersion = rev
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	out.ResourceVersion = rev
	return out, nil
}

// CurrentRevision returns etcd's current revision.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.prefix+"/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}
