package server

// Test hooks of the services wiring for the external server_test package.

// EtcdURL returns the client URL of the etcd the server uses (embedded or external), for a
// second server sharing it.
func EtcdURL(s *Server) string { return s.ds.URL }
