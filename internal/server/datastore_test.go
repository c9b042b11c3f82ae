package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/peertest"
	"kubesvc/internal/servertest"
)

// TestServer_ExternalDatastore runs the server on a separately started etcd (the real etcd
// binary from hack/peers) through --datastore-endpoint, restarts it on the same etcd, and checks
// that the objects persist and that the keys live under --etcd-prefix.
func TestServer_ExternalDatastore(t *testing.T) {
	if _, ok := peertest.Dir(); !ok {
		t.Skip("peer binaries missing: run hack/peers/build.sh (CI does)")
	}
	url, err := peertest.StartEtcd(t, peertest.EtcdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func() *kubernetes.Clientset {
		cfg := servertest.Config(t)
		cfg.DatastoreEndpoints = []string{url}
		cfg.EtcdPrefix = "/kubesvc-test"
		s := servertest.Start(t, cfg)
		t.Cleanup(func() { servertest.Close(s) })
		cs, err := kubernetes.NewForConfig(s.RESTConfig)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := start()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "persist"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second server on the same external etcd sees the object.
	cs2 := start()
	got, err := cs2.CoreV1().ConfigMaps("default").Get(ctx, "persist", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("second server on the same etcd: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("data %v", got.Data)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("peer etcd is not on loopback: %s", url)
	}
	ec, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	resp, err := ec.Get(ctx, "/kubesvc-test/configmaps/default/persist", clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Fatalf("object not stored under --etcd-prefix in the external etcd: count %v, err %v", resp, err)
	}
}
