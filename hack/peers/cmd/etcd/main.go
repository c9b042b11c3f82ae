// Command etcd is the etcd server at the version k8s.io/kubernetes v1.37.2 requires,
// built from go.etcd.io/etcd/server/v3 as the storage peer for kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
