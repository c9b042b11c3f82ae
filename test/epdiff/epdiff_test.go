package epdiff

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/controller/endpointtest"
	"kubesvc/internal/peertest"
	"kubesvc/internal/servertest"
)

// side is one cluster under test.
type side struct {
	name string
	cs   kubernetes.Interface
	// waitSA: kube-apiserver refuses pods until the namespace's default ServiceAccount exists.
	waitSA bool
}

// kcmControllers are the kube-controller-manager controllers the kube side runs.
var kcmControllers = []string{
	"endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller",
	"serviceaccount-controller", "garbage-collector-controller",
}

// startSides starts kube-apiserver + kube-controller-manager on a peer etcd, and kubesvc
// with the same controllers (no node lifecycle controller: the test's nodes renew no lease),
// concurrently.
func startSides(t *testing.T) (kube, ours *side) {
	t.Helper()
	peertest.SkipIfMissing(t, peertest.EtcdBinary, peertest.KubeAPIServerBinary, peertest.KubeControllerManagerBinary)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	type started struct {
		rc  *rest.Config
		err error
	}
	kubeCh := make(chan started, 1)
	go func() {
		e, err := peertest.RunEtcd(ctx, peertest.EtcdConfig{Dir: dir + "/etcd", UnsafeNoFsync: true})
		if err != nil {
			kubeCh <- started{err: err}
			return
		}
		s, err := peertest.RunKubeAPIServer(ctx, peertest.APIServerConfig{EtcdURL: e.ClientURL, Dir: dir + "/apiserver"})
		if err != nil {
			kubeCh <- started{err: err}
			return
		}
		rc := rest.CopyConfig(s.Config)
		rc.QPS, rc.Burst = 1000, 2000
		if _, err := peertest.RunKubeControllerManager(ctx, s.Config, peertest.ControllerManagerConfig{
			Controllers: kcmControllers, Dir: dir + "/kcm",
		}); err != nil {
			kubeCh <- started{err: err}
			return
		}
		kubeCh <- started{rc: rc}
	}()
	s := servertest.StartTestServer(t, servertest.WithControllers("endpoints", "endpointslice", "endpointslicemirroring", "garbagecollector"))
	k := <-kubeCh
	if k.err != nil {
		t.Fatalf("start kube-apiserver and kube-controller-manager: %v", k.err)
	}
	kcs, err := kubernetes.NewForConfig(k.rc)
	if err != nil {
		t.Fatal(err)
	}
	ocs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &side{name: "kube", cs: kcs, waitSA: true}, &side{name: "kubesvc", cs: ocs}
}

// env is what a step acts on.
type env struct {
	cs kubernetes.Interface
	ns string
}

// step is one action of a case, run on both sides.
type step func(ctx context.Context, e env) error

// tcase is one scenario: steps in one namespace, then the Endpoints and EndpointSlices of
// services are compared.
type tcase struct {
	name     string
	services []string
	steps    []step
}

// result is the comparison of one item (a Service's Endpoints or its EndpointSlices).
type result struct {
	item string
	diff string
}

// runCase runs tc on both sides in parallel, waits until they are stable and agree (or the
// deadline passes) and returns one result per item.
func runCase(t *testing.T, kube, ours *side, ns string, tc tcase) []result {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, sd := range []*side{kube, ours} {
		wg.Go(func() {
			if err := endpointtest.CreateNamespace(ctx, sd.cs, ns, sd.waitSA); err != nil {
				errs[i] = err
				return
			}
			e := env{cs: sd.cs, ns: ns}
			// Each step is followed by a wait until the side is stable. Without it the
			// result would depend on how the controllers cut a burst into syncs, which
			// varies from run to run upstream too: a sync that fails on a stale informer
			// cache has already consumed the pods' trigger times, so its retry writes no
			// last-change-trigger-time annotation; which changes share a sync decides
			// which slices get that annotation and how endpoints are packed.
			for n, st := range tc.steps {
				if err := st(ctx, e); err != nil {
					errs[i] = fmt.Errorf("%s: step %d: %w", sd.name, n+1, err)
					return
				}
				if _, err := settled(ctx, sd.cs, ns, tc.services); err != nil {
					errs[i] = fmt.Errorf("%s: after step %d: %w", sd.name, n+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var kubeSnap, ourSnap map[string]string
	deadline := time.Now().Add(90 * time.Second)
	for {
		var kerr, oerr error
		wg.Go(func() { kubeSnap, kerr = settled(ctx, kube.cs, ns, tc.services) })
		wg.Go(func() { ourSnap, oerr = settled(ctx, ours.cs, ns, tc.services) })
		wg.Wait()
		if err := errors.Join(kerr, oerr); err != nil {
			t.Fatal(err)
		}
		// A side may look stable while it waits out a retry backoff: compare again until
		// the deadline.
		if maps.Equal(kubeSnap, ourSnap) || time.Now().After(deadline) {
			break
		}
	}
	var out []result
	for _, item := range slices.Sorted(maps.Keys(kubeSnap)) {
		out = append(out, result{item: item, diff: cmp.Diff(kubeSnap[item], ourSnap[item])})
	}
	return out
}

// stableFor is how long a side's snapshot must stay unchanged to count as settled.
const stableFor = 2 * time.Second

// settled polls the snapshot of services until it has not changed for stableFor (at most a
// minute) and returns it.
func settled(ctx context.Context, cs kubernetes.Interface, ns string, services []string) (map[string]string, error) {
	var last map[string]string
	since := time.Now()
	deadline := since.Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		snap, err := snapshot(ctx, cs, ns, services)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if !maps.Equal(snap, last) {
			last, since = snap, now
		} else if now.Sub(since) >= stableFor || now.After(deadline) {
			return snap, nil
		}
		<-tick.C
	}
}

// TestEndpointControllers_Diff is the differential test (see the package doc).
func TestEndpointControllers_Diff(t *testing.T) {
	kube, ours := startSides(t)
	ctx := context.Background()
	for _, sd := range []*side{kube, ours} {
		for _, n := range []struct{ name, zone string }{{"node-a", "zone-a"}, {"node-b", "zone-b"}, {"node-nozone", ""}} {
			if err := endpointtest.CreateNode(ctx, sd.cs, n.name, n.zone); err != nil {
				t.Fatalf("%s: %v", sd.name, err)
			}
		}
	}
	var mu sync.Mutex
	var results []result
	t.Run("cases", func(t *testing.T) {
		for i, tc := range cases() {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				rs := runCase(t, kube, ours, fmt.Sprintf("case-%02d", i), tc)
				mu.Lock()
				defer mu.Unlock()
				for _, r := range rs {
					r.item = tc.name + ": " + r.item
					results = append(results, r)
					if r.diff != "" {
						t.Errorf("%s differs (-kube-controller-manager +kubesvc):\n%s", r.item, r.diff)
					}
				}
			})
		}
	})
	matched := 0
	var report strings.Builder
	for _, r := range results {
		if r.diff == "" {
			matched++
		} else {
			fmt.Fprintf(&report, "DIFFERS %s\n", r.item)
		}
	}
	t.Logf("%smatched %d of %d", report.String(), matched, len(results))
	if matched < len(results) {
		t.Errorf("matched %d of %d", matched, len(results))
	}
}
