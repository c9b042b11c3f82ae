package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// datastore is the etcd the server stores objects in: embedded or external.
type datastore struct {
	client   *clientv3.Client
	embedded *embed.Etcd
	URL      string
}

func (d *datastore) Close() {
	if d.client != nil {
		d.client.Close()
	}
	if d.embedded != nil {
		d.embedded.Close()
	}
}

// startDatastore starts embedded etcd in dir, or connects to the endpoints.
func startDatastore(ctx context.Context, dir string, endpoints []string, clientPort, peerPort int) (_ *datastore, err error) {
	d := &datastore{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if len(endpoints) == 0 {
		cfg := embed.NewConfig()
		cfg.Name = "kubesvc"
		cfg.Dir = filepath.Join(dir, "etcd")
		cfg.LogLevel = "error"
		cfg.Logger = "zap"
		cfg.AutoCompactionMode = "periodic"
		cfg.AutoCompactionRetention = "5m"
		cfg.QuotaBackendBytes = 8 << 30
		cfg.UnsafeNoFsync = false
		// Ports picked free here are bound by etcd a moment later; another process may take
		// one in between, so picked ports get a few attempts.
		picked := clientPort == 0 || peerPort == 0
		var e *embed.Etcd
		var cu *url.URL
		for attempt := 0; ; attempt++ {
			cp, pp := clientPort, peerPort
			if cp == 0 {
				if cp, err = freePort(); err != nil {
					return nil, err
				}
			}
			if pp == 0 {
				if pp, err = freePort(); err != nil {
					return nil, err
				}
			}
			var pu *url.URL
			cu, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", cp))
			pu, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pp))
			cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
			cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
			cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
			e, err = embed.StartEtcd(cfg)
			if err == nil {
				break
			}
			if !picked || attempt == 4 || !errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
			}
		}
		d.embedded = e
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			return nil, fmt.Errorf("embedded etcd: %w", err)
		case <-time.After(60 * time.Second):
			return nil, fmt.Errorf("embedded etcd did not become ready in 60s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		endpoints = []string{cu.String()}
	}
	d.URL = strings.Join(endpoints, ",")
	c, err := clientv3.New(clientv3.Config{
		Endpoints:          endpoints,
		DialTimeout:        10 * time.Second,
		Logger:             zap.NewNop(),
		MaxCallRecvMsgSize: 1 << 30,
		DialOptions:        []grpc.DialOption{grpc.WithBlock()},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", d.URL, err)
	}
	d.client = c
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.Get(cctx, "health"); err != nil {
		return nil, fmt.Errorf("etcd %s not reachable: %w", d.URL, err)
	}
	return d, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
