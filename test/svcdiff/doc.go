// Package svcdiff is the differential test of kubesvc's Service API against the real
// kube-apiserver v1.37.2 (issue 3's proof): a corpus of request sequences under testdata/
// (creates, updates, patches, server-side applies, re-applies and deletes of Services of every
// type and every type transition, explicit clusterIP / nodePort requests that are free, taken
// or out of range, Endpoints, EndpointSlices, Ingresses and IngressClasses) is sent to both
// servers, each on its own etcd with the same --service-cidr and node-port range, and the
// answers are compared: stored objects with uid, resourceVersion, timestamps, generated names
// and allocated IPs/ports masked (allocated values are checked to lie in their range and
// mapped to symbols, so a value that changes between steps still shows), and error responses
// by code, reason, message and each cause's field, type and message.
//
// The test prints `matched N of M` (go test -v) and fails when a case outside the documented
// allow-list (allowList in svcdiff_test.go) differs. TestManagedFields_MatchKubeAPIServer
// (managedfields_test.go) does the same for field ownership: metadata.managedFields after
// creates, updates, patches, server-side applies and subresource writes, and the answers of
// server-side apply, with times masked. It needs the peer binaries from
// hack/peers/build.sh and skips with a clear message when they are missing. Run it in a
// private network namespace (hack/test.sh). SVCDIFF_RUN=<substring> runs only the cases whose
// name or file contains it; SVCDIFF_DUMP=1 prints both masked transcripts of every case.
//
// Corpus format (testdata/*.yaml): a list of cases {name, cluster, steps}; cluster "" is
// single-stack 10.96.0.0/16, "dual" adds fd00:10:96::/112, "tiny" is 10.96.0.0/29 with node
// ports 30000-30002. A step is {verb: create|update|patch|apply|delete|get|status, resource,
// name, patchType, base: current, dryRun, query, body}; see corpusCase and step.
//
// The package has no non-test code; nothing imports it.
package svcdiff
