// Package pki keeps the API server's certificate authority, serving certificate, admin client
// certificate and join token in the data dir, and authenticates callers from a verified client
// certificate or a bearer token.
//
// The layout in Config.Dir is, like k3s:
//
//	tls/ca.crt, tls/ca.key            self-signed CA (ECDSA P-256, 10 years), never rotated here
//	tls/serving.crt, tls/serving.key  API server certificate (1 year), re-issued when its SANs no
//	                                  longer cover the configured hosts or it nears expiry
//	tls/admin.crt, tls/admin.key      client certificate CN=system:admin, O=system:masters
//	token                             join token for node agents
//	admin.kubeconfig                  written by Bundle.WriteAdminKubeconfig
//
// Private keys, the token and the kubeconfig are mode 0600; every file is written to a temporary
// name and renamed, so a crash never leaves a half-written file. The CA is the trust root of every
// issued kubeconfig, so Ensure refuses to replace a CA whose key is missing or does not match
// instead of silently minting a new one; leaf certificates are derived data and are simply
// re-issued when they are missing, unreadable or not signed by the CA.
package pki
