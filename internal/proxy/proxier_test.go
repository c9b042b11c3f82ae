package proxy

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/fake"

	"kubesvc/internal/runtime/netns/netnstest"
)

func TestMain(m *testing.M) {
	if code, child := netnstest.PrivateNamespaces(); !child {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// fakeDataplane records syncs; it behaves like a dataplane that accepts everything.
type fakeDataplane struct {
	mu    sync.Mutex
	syncs []fakeSync
	fail  bool
}

type fakeSync struct {
	snap    *Snapshot
	changed sets.Set[ServicePortName]
	full    bool
}

func (f *fakeDataplane) Name() string { return "fake" }
func (f *fakeDataplane) Sync(_ context.Context, snap *Snapshot, changed sets.Set[ServicePortName], full bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs = append(f.syncs, fakeSync{snap, changed.Clone(), full})
	if f.fail {
		return io.ErrUnexpectedEOF
	}
	return nil
}
func (f *fakeDataplane) Cleanup() error { return nil }
func (f *fakeDataplane) Close() error   { return nil }

func (f *fakeDataplane) last() fakeSync {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs[len(f.syncs)-1]
}

// startFake starts a Proxier of cfg with a fakeDataplane and waits for its first sync.
func startFake(t *testing.T, cfg Config) (*Proxier, *fakeDataplane) {
	t.Helper()
	dp := &fakeDataplane{}
	cfg.Dataplane = dp
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("no first sync")
	}
	return p, dp
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(url string) (int, http.Header, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

type errString string

func (e errString) Error() string { return string(e) }

// TestProxier_HealthCheckAndSyncs drives the generic proxier with a fake clientset and a fake
// dataplane: no rules before the informers synced, a first full sync (PX-S-01), partial syncs
// naming the changed port, the health-check server of an eTP Local Service (PX-H-01: 200 with
// a ready local endpoint, 503 without, JSON body and headers), /healthz (PX-H-02) and the
// kube-proxy metrics.
func TestProxier_HealthCheckAndSyncs(t *testing.T) {
	netnstest.RequireIsolated(t)
	lb := service("web", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 31555
		s.Spec.Ports[0].NodePort = 30080
	})
	es := slice("web", "web-1", 8080, sliceEP("10.244.0.2", "node1", nil))
	es.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}
	client := fake.NewClientset(lb, es)
	p, dp := startFake(t, Config{Client: client, NodeName: "node1", NodeIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: time.Minute,
		HealthzBindAddress: "127.0.0.1:0", MetricsBindAddress: "127.0.0.1:0"})
	first := dp.last()
	if !first.full || first.snap.Services[webHTTP] == nil || len(first.snap.Services[webHTTP].LocalEndpoints) != 1 {
		t.Fatalf("first sync: full=%t services=%v", first.full, first.snap.Services)
	}

	t.Run("PX-H-01 200 with a local endpoint", func(t *testing.T) {
		var body string
		waitFor(t, "health check 200", func() error {
			code, h, b, err := get("http://127.0.0.1:31555/any/path")
			if err != nil {
				return err
			}
			if code != 200 || h.Get("Content-Type") != "application/json" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Load-Balancing-Endpoint-Weight") != "1" {
				return errString("status " + http.StatusText(code) + " headers " + strings.Join(h.Values("X-Load-Balancing-Endpoint-Weight"), ","))
			}
			body = b
			return nil
		})
		want := "{\n\t\"service\": {\n\t\t\"namespace\": \"ns\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}"
		if body != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	})
	t.Run("NFT-S-02 partial sync names the changed port; PX-H-01 503 without local endpoint", func(t *testing.T) {
		moved := slice("web", "web-1", 8080, sliceEP("10.244.1.2", "node2", nil))
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "partial sync", func() error {
			s := dp.last()
			if s.full || !s.changed.Has(webHTTP) || len(s.snap.Services[webHTTP].LocalEndpoints) != 0 {
				return errString("not yet")
			}
			return nil
		})
		waitFor(t, "health check 503", func() error {
			code, h, _, err := get("http://127.0.0.1:31555/")
			if err != nil {
				return err
			}
			if code != 503 || h.Get("X-Load-Balancing-Endpoint-Weight") != "0" {
				return errString(http.StatusText(code))
			}
			return nil
		})
	})
	t.Run("PX-H-02 healthz and livez", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/livez"} {
			code, _, body, err := get("http://" + p.HealthzAddr.String() + path)
			if err != nil || code != 200 || !strings.Contains(body, `"healthy":true`) {
				t.Fatalf("%s: %d %q %v", path, code, body, err)
			}
		}
	})
	t.Run("metrics with kube-proxy names", func(t *testing.T) {
		_, _, body, err := get("http://" + p.MetricsAddr.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"kubeproxy_sync_proxy_rules_duration_seconds_count", "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
			"kubeproxy_sync_partial_proxy_rules_duration_seconds_count", "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
			"kubeproxy_network_programming_duration_seconds_count 1", `kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external"} 1`} {
			if !strings.Contains(body, name) {
				t.Errorf("metrics lack %q", name)
			}
		}
	})
	t.Run("NFT-S-05 a failed sync makes the next one full", func(t *testing.T) {
		dp.mu.Lock()
		dp.fail = true
		dp.mu.Unlock()
		if err := p.sync(); err == nil {
			t.Fatal("sync did not fail")
		}
		dp.mu.Lock()
		dp.fail = false
		dp.mu.Unlock()
		if err := p.sync(); err != nil {
			t.Fatal(err)
		}
		if !dp.last().full {
			t.Fatal("sync after a failure was not full")
		}
	})
}
