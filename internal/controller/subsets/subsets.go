// Package subsets puts the subsets of a core/v1 Endpoints object into canonical form
// (spec rule EP-E-06), exactly as kube v1.37.2 pkg/api/v1/endpoints does: one subset per
// distinct (address set, port set), not-ready winning over ready for an address listed both
// ways, addresses sorted by IP bytes then target UID, ports and subsets sorted by an FNV-128a
// hash of their k8s.io/utils/dump rendering. Byte-identical ordering matters because the
// Endpoints controller compares its desired subsets with the stored ones to skip no-op
// writes.
//
// The Endpoints controller and the EndpointSlice mirroring controller import this package.
package subsets

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/fnv"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/dump"
)

// Repack returns subsets in canonical form: addresses are grouped by the set of ports they
// serve, one subset per group. An address is identified by (IP, targetRef.UID); if it is
// ready for a port in one subset and not ready in another, it is not ready. A subset
// without ports (headless Service without ports) keeps its addresses with no ports. The
// input is not modified.
func Repack(in []corev1.EndpointSubset) []corev1.EndpointSubset {
	all := map[addressKey]*corev1.EndpointAddress{}
	byPort := map[corev1.EndpointPort]addressSet{}
	for i := range in {
		if len(in[i].Ports) == 0 {
			// Port -1 is the sentinel for "no port".
			mapAddressesByPort(&in[i], corev1.EndpointPort{Port: -1}, all, byPort)
			continue
		}
		for _, port := range in[i].Ports {
			mapAddressesByPort(&in[i], port, all, byPort)
		}
	}
	type keyString string
	addrsByKey := map[keyString]addressSet{}
	portsByKey := map[keyString][]corev1.EndpointPort{}
	for port, addrs := range byPort {
		key := keyString(hashAddresses(addrs))
		addrsByKey[key] = addrs
		if port.Port > 0 {
			portsByKey[key] = append(portsByKey[key], port)
		} else if _, found := portsByKey[key]; !found {
			portsByKey[key] = nil
		}
	}
	final := []corev1.EndpointSubset{}
	for key, ports := range portsByKey {
		var ready, notReady []corev1.EndpointAddress
		for addr, isReady := range addrsByKey[key] {
			if isReady {
				ready = append(ready, *addr)
			} else {
				notReady = append(notReady, *addr)
			}
		}
		final = append(final, corev1.EndpointSubset{Addresses: ready, NotReadyAddresses: notReady, Ports: ports})
	}
	return Sort(final)
}

type addressKey struct {
	ip  string
	uid types.UID
}

// addressSet maps a (deduplicated) address to whether it is ready.
type addressSet map[*corev1.EndpointAddress]bool

func mapAddressesByPort(s *corev1.EndpointSubset, port corev1.EndpointPort, all map[addressKey]*corev1.EndpointAddress, byPort map[corev1.EndpointPort]addressSet) {
	for k := range s.Addresses {
		mapAddressByPort(&s.Addresses[k], port, true, all, byPort)
	}
	for k := range s.NotReadyAddresses {
		mapAddressByPort(&s.NotReadyAddresses[k], port, false, all, byPort)
	}
}

func mapAddressByPort(addr *corev1.EndpointAddress, port corev1.EndpointPort, ready bool, all map[addressKey]*corev1.EndpointAddress, byPort map[corev1.EndpointPort]addressSet) {
	key := addressKey{ip: addr.IP}
	if addr.TargetRef != nil {
		key.uid = addr.TargetRef.UID
	}
	existing := all[key]
	if existing == nil {
		existing = &corev1.EndpointAddress{}
		*existing = *addr
		all[key] = existing
	}
	if _, found := byPort[port]; !found {
		byPort[port] = addressSet{}
	}
	// Not ready wins: only a missing or ready entry is overwritten.
	if wasReady, found := byPort[port][existing]; !found || wasReady {
		byPort[port][existing] = ready
	}
}

type addrReady struct {
	addr  *corev1.EndpointAddress
	ready bool
}

func hashAddresses(addrs addressSet) string {
	list := make([]addrReady, 0, len(addrs))
	for a, ready := range addrs {
		list = append(list, addrReady{a, ready})
	}
	sort.Slice(list, func(i, j int) bool { return LessAddress(list[i].addr, list[j].addr) })
	h := fnv.New128a()
	deepHash(h, list)
	return hex.EncodeToString(h.Sum(nil))
}

// LessAddress orders addresses by the bytes of their IP string, then by target UID (an
// address without targetRef first).
func LessAddress(a, b *corev1.EndpointAddress) bool {
	if c := bytes.Compare([]byte(a.IP), []byte(b.IP)); c != 0 {
		return c < 0
	}
	if b.TargetRef == nil {
		return false
	}
	if a.TargetRef == nil {
		return true
	}
	return a.TargetRef.UID < b.TargetRef.UID
}

// Sort sorts, in place, the addresses of every subset (LessAddress), their ports and the
// subsets themselves (by hash), and returns subsets.
func Sort(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	for i := range subsets {
		s := &subsets[i]
		sort.Sort(addrsByIPAndUID(s.Addresses))
		sort.Sort(addrsByIPAndUID(s.NotReadyAddresses))
		sort.Sort(byHash[corev1.EndpointPort](s.Ports))
	}
	sort.Sort(byHash[corev1.EndpointSubset](subsets))
	return subsets
}

// deepHash writes the k8s.io/utils/dump rendering of obj into h (upstream
// pkg/util/hash.DeepHashObject).
func deepHash(h hash.Hash, obj any) []byte {
	h.Reset()
	fmt.Fprintf(h, "%v", dump.ForHash(obj))
	return h.Sum(nil)
}

type addrsByIPAndUID []corev1.EndpointAddress

func (s addrsByIPAndUID) Len() int           { return len(s) }
func (s addrsByIPAndUID) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s addrsByIPAndUID) Less(i, j int) bool { return LessAddress(&s[i], &s[j]) }

// byHash sorts by the FNV-128a hash of each element's dump (upstream portsByHash and
// subsetsByHash).
type byHash[T any] []T

func (s byHash[T]) Len() int      { return len(s) }
func (s byHash[T]) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s byHash[T]) Less(i, j int) bool {
	h := fnv.New128a()
	return bytes.Compare(deepHash(h, s[i]), deepHash(h, s[j])) < 0
}
