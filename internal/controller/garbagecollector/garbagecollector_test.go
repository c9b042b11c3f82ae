package garbagecollector_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"kubesvc/internal/controller/garbagecollector"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// startGC starts a test server and a garbage collector against it; both stop at test end.
func startGC(t *testing.T) kubernetes.Interface {
	cs, _ := startGCWith(t)
	return cs
}

// startGCWith is startGC that also returns the collector.
func startGCWith(t *testing.T) (kubernetes.Interface, *garbagecollector.Controller) {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("*", "-garbagecollector"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := garbagecollector.New(garbagecollector.Config{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gc.Run(ctx, 2)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cs, gc
}

func ownerRef(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, BlockOwnerDeletion: &block}
}

func createCM(t *testing.T, cs kubernetes.Interface, name string, fins []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners, Finalizers: fins},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap %s: %v", name, err)
	}
	return cm
}

func createPod(t *testing.T, cs kubernetes.Interface, name string, owners ...metav1.OwnerReference) *corev1.Pod {
	t.Helper()
	p, err := cs.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

func cmGone(cs kubernetes.Interface, name string) func() error {
	return func() error {
		cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("configmap %s still exists (deletionTimestamp %v, finalizers %v)", name, cm.DeletionTimestamp, cm.Finalizers)
	}
}

func podGone(cs kubernetes.Interface, name string) func() error {
	return func() error {
		_, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("pod %s still exists", name)
	}
}

func getCM(t *testing.T, cs kubernetes.Interface, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap %s: %v", name, err)
	}
	return cm
}

func deleteCM(t *testing.T, cs kubernetes.Interface, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	err := cs.CoreV1().ConfigMaps("default").Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil {
		t.Fatalf("delete configmap %s with %s: %v", name, policy, err)
	}
}

// TestGarbageCollector_Propagation deletes a ConfigMap owning a ConfigMap and a Pod with
// each propagation policy.
func TestGarbageCollector_Propagation(t *testing.T) {
	cs, gc := startGCWith(t)
	tests := []struct {
		name   string
		policy metav1.DeletionPropagation
		// orphaned: the dependents must survive without the ownerReference.
		orphaned bool
	}{
		{name: "background", policy: metav1.DeletePropagationBackground},
		{name: "foreground", policy: metav1.DeletePropagationForeground},
		{name: "orphan", policy: metav1.DeletePropagationOrphan, orphaned: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			owner := createCM(t, cs, tc.name+"-owner", nil)
			dep := createCM(t, cs, tc.name+"-dep", nil, ownerRef(owner, true))
			pod := createPod(t, cs, tc.name+"-pod", ownerRef(owner, true))
			// Orphaning acts on the dependents the collector has seen (as upstream's): one
			// created just before the owner's delete and not yet observed would be collected
			// later as an object whose owner is gone. Wait until both are in the graph.
			servertest.WaitFor(t, waitTimeout, "dependents in the collector's graph", func() error {
				for _, uid := range []types.UID{owner.UID, dep.UID, pod.UID} {
					if !gc.Knows(uid) {
						return fmt.Errorf("%s not observed yet", uid)
					}
				}
				return nil
			})
			deleteCM(t, cs, owner.Name, tc.policy)
			servertest.WaitFor(t, waitTimeout, "owner deleted", cmGone(cs, owner.Name))
			if tc.orphaned {
				dep := getCM(t, cs, tc.name+"-dep")
				if len(dep.OwnerReferences) != 0 {
					t.Errorf("orphaned configmap keeps ownerReferences %v", dep.OwnerReferences)
				}
				pod, err := cs.CoreV1().Pods("default").Get(context.Background(), tc.name+"-pod", metav1.GetOptions{})
				if err != nil {
					t.Fatalf("orphaned pod: %v", err)
				}
				if len(pod.OwnerReferences) != 0 {
					t.Errorf("orphaned pod keeps ownerReferences %v", pod.OwnerReferences)
				}
				return
			}
			if tc.policy == metav1.DeletePropagationForeground {
				// The owner went only after its blocking dependents.
				if err := cmGone(cs, tc.name+"-dep")(); err != nil {
					t.Errorf("owner deleted before dependent: %v", err)
				}
				if err := podGone(cs, tc.name+"-pod")(); err != nil {
					t.Errorf("owner deleted before dependent: %v", err)
				}
			}
			servertest.WaitFor(t, waitTimeout, "dependent configmap deleted", cmGone(cs, tc.name+"-dep"))
			servertest.WaitFor(t, waitTimeout, "dependent pod deleted", podGone(cs, tc.name+"-pod"))
		})
	}
}

// TestGarbageCollector_ForegroundWaitsForBlockingDependent: an owner in foreground deletion
// stays while a dependent with blockOwnerDeletion is held by another finalizer, and goes once
// that dependent is gone.
func TestGarbageCollector_ForegroundWaitsForBlockingDependent(t *testing.T) {
	cs := startGC(t)
	ctx := context.Background()
	owner := createCM(t, cs, "fg-owner", nil)
	createCM(t, cs, "fg-held", []string{"example.com/hold"}, ownerRef(owner, true))
	createCM(t, cs, "fg-free", nil, ownerRef(owner, false))
	deleteCM(t, cs, owner.Name, metav1.DeletePropagationForeground)
	servertest.WaitFor(t, waitTimeout, "held dependent being deleted", func() error {
		if cm := getCM(t, cs, "fg-held"); cm.DeletionTimestamp == nil {
			return errors.New("no deletionTimestamp yet")
		}
		return nil
	})
	servertest.WaitFor(t, waitTimeout, "non-blocking dependent deleted", cmGone(cs, "fg-free"))
	if cm := getCM(t, cs, owner.Name); !slices.Contains(cm.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("owner lost %s while a blocking dependent remains: %v", metav1.FinalizerDeleteDependents, cm.Finalizers)
	}
	held := getCM(t, cs, "fg-held")
	held.Finalizers = nil
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("release dependent: %v", err)
	}
	servertest.WaitFor(t, waitTimeout, "held dependent deleted", cmGone(cs, "fg-held"))
	servertest.WaitFor(t, waitTimeout, "owner deleted", cmGone(cs, owner.Name))
}

// TestGarbageCollector_MultipleOwners: a dependent with another live owner only loses the
// reference to the deleted one, and is deleted when its last owner goes.
func TestGarbageCollector_MultipleOwners(t *testing.T) {
	cs := startGC(t)
	a := createCM(t, cs, "multi-a", nil)
	b := createCM(t, cs, "multi-b", nil)
	createCM(t, cs, "multi-dep", nil, ownerRef(a, false), ownerRef(b, false))
	deleteCM(t, cs, a.Name, metav1.DeletePropagationBackground)
	servertest.WaitFor(t, waitTimeout, "reference to deleted owner removed", func() error {
		refs := getCM(t, cs, "multi-dep").OwnerReferences
		if len(refs) != 1 || refs[0].UID != b.UID {
			return fmt.Errorf("ownerReferences %v, want only %s", refs, b.UID)
		}
		return nil
	})
	deleteCM(t, cs, b.Name, metav1.DeletePropagationBackground)
	servertest.WaitFor(t, waitTimeout, "dependent deleted with its last owner", cmGone(cs, "multi-dep"))
}

// TestGarbageCollector_OwnerAlreadyGone: dependents created after their owner vanished (or
// naming a UID the owner's name does not have) are deleted; one with a live owner is kept.
func TestGarbageCollector_OwnerAlreadyGone(t *testing.T) {
	cs := startGC(t)
	live := createCM(t, cs, "late-live-owner", nil)
	gone := createCM(t, cs, "late-gone-owner", nil)
	deleteCM(t, cs, gone.Name, metav1.DeletePropagationBackground)
	servertest.WaitFor(t, waitTimeout, "owner deleted", cmGone(cs, gone.Name))

	createCM(t, cs, "late-kept", nil, ownerRef(live, false))
	stale := ownerRef(live, false)
	stale.UID = types.UID("00000000-0000-0000-0000-000000000001")
	tests := []struct {
		name  string
		owner metav1.OwnerReference
	}{
		{name: "owner deleted", owner: ownerRef(gone, false)},
		{name: "owner name with another uid", owner: stale},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmName := fmt.Sprintf("late-dep-%d", i)
			podName := fmt.Sprintf("late-pod-%d", i)
			createCM(t, cs, cmName, nil, tc.owner)
			createPod(t, cs, podName, tc.owner)
			servertest.WaitFor(t, waitTimeout, "dependent configmap deleted", cmGone(cs, cmName))
			servertest.WaitFor(t, waitTimeout, "dependent pod deleted", podGone(cs, podName))
		})
	}
	if refs := getCM(t, cs, "late-kept").OwnerReferences; len(refs) != 1 {
		t.Errorf("dependent of a live owner changed: ownerReferences %v", refs)
	}
}
