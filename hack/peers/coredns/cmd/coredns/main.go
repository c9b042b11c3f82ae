// Command coredns is upstream CoreDNS with its standard plugin set (including the
// kubernetes plugin), built as the DNS reference peer for kubesvc's differential tests.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // registers every standard plugin, incl. kubernetes
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
