package server

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"kubesvc/internal/controller/endpoints"
	"kubesvc/internal/controller/endpointslice"
	"kubesvc/internal/controller/endpointslicemirroring"
	"kubesvc/internal/controller/garbagecollector"
	"kubesvc/internal/controller/namespace"
)

// controllers runs the in-server controllers; each talks to the API through client-go like a
// Kubernetes component.
type controllers struct {
	wg sync.WaitGroup
}

func clientConfig(base *rest.Config, name string) *rest.Config {
	c := rest.CopyConfig(base)
	c.UserAgent = "kubesvc/" + name
	return c
}

// ControllerNames are the in-server controllers, for --controllers.
var ControllerNames = []string{"garbagecollector", "namespace", "endpoints", "endpointslice", "endpointslicemirroring",
	"replicaset", "replicationcontroller", "deployment", "scheduler", "nodelifecycle"}

// controllerEnabled applies kube-controller-manager's --controllers rules.
func controllerEnabled(name string, list []string) bool {
	star := false
	for _, e := range list {
		switch e {
		case name:
			return true
		case "-" + name:
			return false
		case "*":
			star = true
		}
	}
	return star
}

// startControllers starts the enabled controllers; they stop when ctx ends (wait returns then).
func startControllers(ctx context.Context, cfg *rest.Config, enabled []string) (*controllers, error) {
	c := &controllers{}
	md, err := metadata.NewForConfig(clientConfig(cfg, "garbage-collector"))
	if err != nil {
		return nil, err
	}
	gc, err := garbagecollector.New(garbagecollector.Config{Metadata: md})
	if err != nil {
		return nil, fmt.Errorf("garbage collector: %w", err)
	}
	cs, err := kubernetes.NewForConfig(clientConfig(cfg, "namespace-controller"))
	if err != nil {
		return nil, err
	}
	nsmd, err := metadata.NewForConfig(clientConfig(cfg, "namespace-controller"))
	if err != nil {
		return nil, err
	}
	nsc, err := namespace.New(namespace.Config{Client: cs, Metadata: nsmd})
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	if controllerEnabled("garbagecollector", enabled) {
		c.run("garbagecollector", func() { gc.Run(ctx, 4) })
	}
	if controllerEnabled("namespace", enabled) {
		c.run("namespace", func() { nsc.Run(ctx, 2) })
	}
	if err := c.startEndpointControllers(ctx, cfg, enabled); err != nil {
		return nil, err
	}
	return c, nil
}

// startEndpointControllers starts the enabled Endpoints, EndpointSlice and mirroring
// controllers on one shared informer factory (as kube-controller-manager), with its defaults
// (5 workers each, 100 endpoints per slice, no batching delay).
func (c *controllers) startEndpointControllers(ctx context.Context, cfg *rest.Config, enabled []string) error {
	client := func(name string) (kubernetes.Interface, error) {
		c := clientConfig(cfg, name)
		// Protobuf, as kube-controller-manager's clients (--kube-api-content-type).
		c.ContentType = "application/vnd.kubernetes.protobuf"
		c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		return kubernetes.NewForConfig(c)
	}
	ic, err := client("endpoint-informers")
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(ic, 0)
	var runs []func()
	if controllerEnabled("endpoints", enabled) {
		cs, err := client("endpoints-controller")
		if err != nil {
			return err
		}
		ec, err := endpoints.New(endpoints.Config{Client: cs, Informers: factory})
		if err != nil {
			return err
		}
		runs = append(runs, func() { c.run("endpoints", func() { ec.Run(ctx, 5) }) })
	}
	if controllerEnabled("endpointslice", enabled) {
		cs, err := client("endpointslice-controller")
		if err != nil {
			return err
		}
		esc, err := endpointslice.New(endpointslice.Config{Client: cs, Informers: factory})
		if err != nil {
			return err
		}
		runs = append(runs, func() { c.run("endpointslice", func() { esc.Run(ctx, 5) }) })
	}
	if controllerEnabled("endpointslicemirroring", enabled) {
		cs, err := client("endpointslicemirroring-controller")
		if err != nil {
			return err
		}
		mc, err := endpointslicemirroring.New(endpointslicemirroring.Config{Client: cs, Informers: factory})
		if err != nil {
			return err
		}
		runs = append(runs, func() { c.run("endpointslicemirroring", func() { mc.Run(ctx, 5) }) })
	}
	for _, r := range runs {
		r()
	}
	c.run("endpoint-informers", func() {
		<-ctx.Done()
		factory.Shutdown()
	})
	return nil
}

func (c *controllers) run(name string, f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		klog.V(2).InfoS("controller started", "controller", name)
		f()
	}()
}

func (c *controllers) wait() { c.wg.Wait() }
