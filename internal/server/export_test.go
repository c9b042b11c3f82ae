package server

import clientv3 "go.etcd.io/etcd/client/v3"

// Test hooks for the external server_test package.

// EtcdClient returns the etcd client the server stores objects with.
func EtcdClient(s *Server) *clientv3.Client { return s.store.Client() }

// StrategiesWired reports whether kinds() returns per-resource strategies yet.
func StrategiesWired() bool { return len(kinds(NewConfig())) > 0 }
