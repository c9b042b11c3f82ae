package server

import (
	"context"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubesvc/internal/controller/deployment"
	"kubesvc/internal/controller/nodelifecycle"
	"kubesvc/internal/controller/replicaset"
	"kubesvc/internal/controller/scheduler"
)

// startWorkloadControllers starts the enabled ReplicaSet, ReplicationController and
// Deployment controllers, the scheduler and the node lifecycle controller on one shared
// informer factory, with kube-controller-manager's worker counts scaled down for two cores.
func (c *controllers) startWorkloadControllers(ctx context.Context, base *rest.Config, cfg *Config) error {
	client := func(name string) (kubernetes.Interface, error) {
		return kubernetes.NewForConfig(clientConfig(base, name))
	}
	ic, err := client("workload-informers")
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(ic, 0)
	rsBuilder := func(kind replicaset.Kind) func(kubernetes.Interface) (func(context.Context, int), error) {
		return func(cs kubernetes.Interface) (func(context.Context, int), error) {
			rc, err := replicaset.New(replicaset.Config{Client: cs, Kind: kind, Informers: factory})
			if err != nil {
				return nil, err
			}
			return rc.Run, nil
		}
	}
	builders := []struct {
		name    string
		workers int
		build   func(kubernetes.Interface) (func(context.Context, int), error)
	}{
		{"replicaset", 3, rsBuilder(replicaset.KindReplicaSet)},
		{"replicationcontroller", 3, rsBuilder(replicaset.KindReplicationController)},
		{"deployment", 3, func(cs kubernetes.Interface) (func(context.Context, int), error) {
			d, err := deployment.New(deployment.Config{Client: cs, Informers: factory})
			if err != nil {
				return nil, err
			}
			return d.Run, nil
		}},
		{"scheduler", 1, func(cs kubernetes.Interface) (func(context.Context, int), error) {
			s, err := scheduler.New(scheduler.Config{Client: cs, Informers: factory})
			if err != nil {
				return nil, err
			}
			return s.Run, nil
		}},
		{"nodelifecycle", 1, func(cs kubernetes.Interface) (func(context.Context, int), error) {
			n, err := nodelifecycle.New(nodelifecycle.Config{Client: cs, Informers: factory,
				NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod, PodEvictionTimeout: cfg.PodEvictionTimeout})
			if err != nil {
				return nil, err
			}
			return n.Run, nil
		}},
	}
	var runs []func()
	for _, b := range builders {
		if !controllerEnabled(b.name, cfg.Controllers) {
			continue
		}
		cs, err := client(b.name + "-controller")
		if err != nil {
			return err
		}
		run, err := b.build(cs)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		name, workers := b.name, b.workers
		runs = append(runs, func() { c.run(name, func() { run(ctx, workers) }) })
	}
	for _, r := range runs {
		r()
	}
	c.run("workload-informers", func() {
		<-ctx.Done()
		factory.Shutdown()
	})
	return nil
}
