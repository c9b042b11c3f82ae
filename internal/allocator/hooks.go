package allocator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubesvc/internal/registry/service"
	"kubesvc/internal/storage"
)

// The Allocator is the API server's WriteHooks for services (internal/apiserver.WriteHooks).

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
	hideOnRead(svc)
	txn := o.txn(service.Release{})
	if txn != nil {
		keys := o.claimedKeys()
		txn.OnFailure = func() error { return a.lostRace(keys) }
	}
	return txn, nil
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
	hideOnRead(svc)
	return o.txn(rel), nil
}

// BeforeDelete returns the transaction that frees everything obj holds (SVC-U-06). The
// Endpoints object of the same name stays: kube-apiserver v1.37.2 no longer deletes it
// (measured by test/svcdiff).
func (a *Allocator) BeforeDelete(ctx context.Context, obj runtime.Object) (*storage.Txn, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("allocator: BeforeDelete of %T", obj)
	}
	o := a.newOp(ctx, Owner(svc), false)
	return o.txn(a.strategy.ReleasedOnDelete(svc)), nil
}

// hideOnRead applies, before the write, the part of kube's read decorator
// (defaultOnReadService) that changes what clients see of a current Service: an ExternalName
// Service shows no internalTrafficPolicy. kube-apiserver keeps the field in etcd and hides it
// on every read; kubesvc's API server has no read decorator, so the field is not stored.
func hideOnRead(svc *corev1.Service) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		svc.Spec.InternalTrafficPolicy = nil
	}
}
