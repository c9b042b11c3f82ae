package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/rest"

	"kubesvc/internal/peertest"
	"kubesvc/internal/server"
)

// Target names, as printed in the table.
const (
	targetKubesvc = "kubesvc"
	targetKube    = "kube-controller-manager"
	// targetKubeFast is kube-controller-manager with --kube-api-qps=1000
	// --kube-api-burst=2000 (the client limits kubesvc's in-server controllers have) instead of
	// its defaults of 20 and 30.
	targetKubeFast = "kube-controller-manager-qps1000"
)

// target is one running control plane under test.
type target struct {
	name   string
	config *rest.Config
	// waitSA: kube-apiserver refuses pods until the namespace's default ServiceAccount exists.
	waitSA bool
	stop   func()
}

func startEtcd(ctx context.Context, dir string) (*peertest.Etcd, error) {
	return peertest.RunEtcd(ctx, peertest.EtcdConfig{Dir: dir + "/etcd"})
}

func startTarget(ctx context.Context, name, etcdURL, prefix, dir string) (*target, error) {
	switch name {
	case targetKube:
		return startKube(ctx, etcdURL, prefix, dir, nil)
	case targetKubeFast:
		return startKube(ctx, etcdURL, prefix, dir, []string{"--kube-api-qps=1000", "--kube-api-burst=2000"})
	case targetKubesvc:
		return startKubesvc(ctx, etcdURL, prefix, dir)
	}
	return nil, fmt.Errorf("unknown target %q", name)
}

// startKube runs kube-apiserver and kube-controller-manager with the controllers that shape
// endpoints (and the ServiceAccount controller, which pods need on kube-apiserver), with
// extra kube-controller-manager flags.
func startKube(ctx context.Context, etcdURL, prefix, dir string, kcmArgs []string) (*target, error) {
	api, err := peertest.RunKubeAPIServer(ctx, peertest.APIServerConfig{EtcdURL: etcdURL, EtcdPrefix: prefix, Dir: dir + "/apiserver"})
	if err != nil {
		return nil, err
	}
	cm, err := peertest.RunKubeControllerManager(ctx, api.Config, peertest.ControllerManagerConfig{
		Controllers: []string{"endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller",
			"serviceaccount-controller", "garbage-collector-controller"},
		Dir:       dir + "/kcm",
		ExtraArgs: kcmArgs,
	})
	if err != nil {
		_ = api.Stop()
		return nil, err
	}
	rc := rest.CopyConfig(api.Config)
	rc.QPS, rc.Burst = 5000, 10000
	name := targetKube
	if kcmArgs != nil {
		name = targetKubeFast
	}
	return &target{name: name, config: rc, waitSA: true, stop: func() {
		_ = cm.Stop()
		_ = api.Stop()
	}}, nil
}

// startKubesvc runs a kubesvc server in this process on the shared etcd, with the same
// controllers.
func startKubesvc(ctx context.Context, etcdURL, prefix, dir string) (*target, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := server.NewConfig()
	cfg.DataDir = dir
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPSPort = 0
	cfg.DatastoreEndpoints = []string{etcdURL}
	cfg.EtcdPrefix = prefix
	cfg.DisableAgent = true
	cfg.Controllers = []string{"endpoints", "endpointslice", "endpointslicemirroring", "garbagecollector"}
	cfg.Out = io.Discard
	sctx, cancel := context.WithCancel(ctx)
	s, err := server.Start(sctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	rc := rest.CopyConfig(s.RESTConfig)
	rc.QPS, rc.Burst = 5000, 10000
	return &target{name: targetKubesvc, config: rc, stop: func() {
		s.Close()
		cancel()
	}}, nil
}
