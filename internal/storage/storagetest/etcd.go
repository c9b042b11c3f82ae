// Package storagetest starts a real embedded etcd for tests of storage and its users.
package storagetest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartEtcd starts an embedded etcd in a temp dir on 127.0.0.1 ephemeral ports and returns a
// client; both are closed when the test ends.
func StartEtcd(tb testing.TB) *clientv3.Client {
	tb.Helper()
	// The ports are picked free and then bound by etcd: another test of the package may take
	// one in between ("address already in use"), so a few attempts with fresh ports.
	var (
		e   *embed.Etcd
		cu  *url.URL
		err error
	)
	for attempt := 0; ; attempt++ {
		cfg := embed.NewConfig()
		cfg.Name = "test"
		cfg.Dir = tb.TempDir()
		cfg.LogLevel = "fatal"
		var pu *url.URL
		cu, pu = mustURL(tb), mustURL(tb)
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.UnsafeNoFsync = true
		e, err = embed.StartEtcd(cfg)
		if err == nil {
			break
		}
		if attempt == 4 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatalf("start etcd: %v", err)
		}
	}
	tb.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		tb.Fatal("etcd not ready in 30s")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func mustURL(tb testing.TB) *url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pick port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	return u
}
