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
// The test prints `matched N of M` and fails when a case outside the documented allow-list
// differs. It needs the peer binaries from hack/peers/build.sh and skips with a clear message
// when they are missing. Run it in a private network namespace (hack/test.sh).
//
// The package has no non-test code; nothing imports it.
package svcdiff
