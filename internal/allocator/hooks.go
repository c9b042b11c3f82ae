package allocator

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubesvc/internal/registry/service"
	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

// The Allocator is the API server's WriteHooks for services (internal/apiserver.WriteHooks).

var endpointsInfo = resource.Lookup(corev1.SchemeGroupVersion.WithResource("endpoints"))

// BeforeCreate runs the strategy's BeginCreate (IP families, cluster IPs, node ports,
// healthCheckNodePort) on a defaulted Service and returns the transaction that claims the
// allocated keys with the Service's write. Errors are kube's API errors.
func (a *Allocator) BeforeCreate(ctx context.Context, obj runtime.Object, dryRun bool) (*storage.Txn, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("allocator: BeforeCreate of %T", obj)
	}
	o := a.newOp(ctx, Owner(svc), dryRun)
	if err := a.strategy.BeginCreate(svc, o); err != nil {
		return nil, err
	}
	return o.txn(service.Release{}), nil
}

// BeforeUpdate runs the strategy's BeginUpdate from old to obj and returns the transaction
// that claims new values and frees released ones with the write (SVC-U-05).
func (a *Allocator) BeforeUpdate(ctx context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error) {
	svc, ok1 := obj.(*corev1.Service)
	oldSvc, ok2 := old.(*corev1.Service)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("allocator: BeforeUpdate of %T", obj)
	}
	o := a.newOp(ctx, Owner(oldSvc), dryRun)
	rel, err := a.strategy.BeginUpdate(svc, oldSvc, o)
	if err != nil {
		return nil, err
	}
	return o.txn(rel), nil
}

// BeforeDelete returns the transaction that frees everything obj holds (SVC-U-06) and deletes
// the Endpoints object of the same name, as kube-apiserver does after deleting a Service.
func (a *Allocator) BeforeDelete(ctx context.Context, obj runtime.Object) (*storage.Txn, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("allocator: BeforeDelete of %T", obj)
	}
	o := a.newOp(ctx, Owner(svc), false)
	return o.txn(a.strategy.ReleasedOnDelete(svc), clientv3.OpDelete(a.store.Key(endpointsInfo, svc.Namespace, svc.Name))), nil
}
