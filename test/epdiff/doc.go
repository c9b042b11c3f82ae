// Package epdiff is the differential test of kubesvc's endpoint controllers (issue 4, items
// 1–3) against kube-controller-manager v1.37.2: the same Nodes, Services, pods (with the
// statuses a node agent would write, set by the test), pod status changes, deletes and
// hand-made Endpoints/EndpointSlices go to a peer kube-apiserver + kube-controller-manager
// (endpoints, endpointslice, endpointslice-mirroring, serviceaccount and garbage-collector
// controllers) and to an in-process kubesvc server, one namespace per case. Once both sides
// are stable, the resulting Endpoints and EndpointSlices of every Service of a case are
// compared with generated name suffixes, UIDs, resourceVersions and times masked: labels,
// annotation keys (values too, except the trigger time), subsets, endpoint sets with their
// conditions, node, zone, hostname and target, ports, address types, per-slice endpoint
// counts (packing) and owner references.
//
// The test prints `matched N of M` (M = one Endpoints and one EndpointSlice set per Service
// per case) and fails on any difference. It needs the peer binaries from hack/peers/build.sh
// and skips with a clear message when they are missing. Run it in a private network
// namespace (hack/test.sh).
//
// The package has no non-test code; nothing imports it.
package epdiff
