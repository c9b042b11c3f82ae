package dns

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// informers feeds a store from the API: one informer per kind, each transforming objects
// into projections before they reach its cache.
type informers struct {
	list []cache.SharedIndexInformer
}

// newInformers builds the informers (nothing runs before run). withPods adds the Pod
// informer of "pods verified" mode.
func newInformers(c kubernetes.Interface, st *store, withPods bool) (*informers, error) {
	inf := &informers{}
	add := func(lw *cache.ListWatch, obj runtime.Object, transform cache.TransformFunc, set func(old, cur any)) error {
		i := cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{})
		if err := i.SetTransform(transform); err != nil {
			return fmt.Errorf("dns: set informer transform: %w", err)
		}
		_, err := i.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { set(nil, o) },
			UpdateFunc: func(o, n any) { set(o, n) },
			DeleteFunc: func(o any) {
				if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				set(o, nil)
			},
		})
		if err != nil {
			return fmt.Errorf("dns: add informer handler: %w", err)
		}
		inf.list = append(inf.list, i)
		return nil
	}
	core := c.CoreV1()
	err := add(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Services("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Services("").Watch(ctx, o)
		},
	}, &corev1.Service{}, transformTo(newService), func(o, n any) {
		old, _ := o.(*service)
		cur, _ := n.(*service)
		st.setService(old, cur)
	})
	if err != nil {
		return nil, err
	}
	disc := c.DiscoveryV1()
	err = add(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return disc.EndpointSlices("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return disc.EndpointSlices("").Watch(ctx, o)
		},
	}, &discoveryv1.EndpointSlice{}, transformTo(newEndpoints), func(o, n any) {
		old, _ := o.(*endpoints)
		cur, _ := n.(*endpoints)
		st.setEndpoints(old, cur)
	})
	if err != nil {
		return nil, err
	}
	err = add(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Namespaces().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Namespaces().Watch(ctx, o)
		},
	}, &corev1.Namespace{}, transformTo(func(n *corev1.Namespace) *namespaceObj {
		return &namespaceObj{meta: slimMeta(n.ObjectMeta)}
	}), func(o, n any) {
		if cur, ok := n.(*namespaceObj); ok {
			st.setNamespace(cur.meta.Name, true)
		} else if old, ok := o.(*namespaceObj); ok {
			st.setNamespace(old.meta.Name, false)
		}
	})
	if err != nil {
		return nil, err
	}
	if withPods {
		err = add(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return core.Pods("").List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return core.Pods("").Watch(ctx, o)
			},
		}, &corev1.Pod{}, transformTo(func(p *corev1.Pod) *pod {
			if q := newPod(p); q != nil {
				return q
			}
			// A terminating pod keeps its key in the cache but answers nothing.
			return &pod{meta: slimMeta(p.ObjectMeta)}
		}), func(o, n any) {
			old, _ := o.(*pod)
			cur, _ := n.(*pod)
			st.setPod(old, cur)
		})
		if err != nil {
			return nil, err
		}
	}
	return inf, nil
}

// transformTo adapts a projection function to an informer transform; objects of other
// types (already projected ones, tombstones) pass unchanged.
func transformTo[T any, P any](f func(*T) P) cache.TransformFunc {
	return func(o any) (any, error) {
		if t, ok := o.(*T); ok {
			return f(t), nil
		}
		return o, nil
	}
}

// run starts the informers; they stop when ctx ends.
func (inf *informers) run(ctx context.Context) {
	for _, i := range inf.list {
		go i.RunWithContext(ctx)
	}
}

// synced reports whether every informer has synced.
func (inf *informers) synced() bool {
	for _, i := range inf.list {
		if !i.HasSynced() {
			return false
		}
	}
	return true
}
