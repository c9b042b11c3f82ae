package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// User is an authenticated caller.
type User struct {
	// Name is the user name: a client certificate's common name or a token's user.
	Name string
	// Groups are a client certificate's organizations or a token's groups.
	Groups []string
}

// tokenEntry is one bearer token, kept only as its SHA-256 so every comparison has the same
// length and the table never holds the secrets.
type tokenEntry struct {
	sum  [sha256.Size]byte
	user User
}

// AddToken makes Authenticate accept token as u, replacing an earlier entry for the same token.
// Node identities are added this way after a node joins.
func (b *Bundle) AddToken(token string, u User) error {
	if err := validToken(token); err != nil {
		return err
	}
	if u.Name == "" {
		return errors.New("pki: token user has no name")
	}
	e := tokenEntry{sum: sha256.Sum256([]byte(token)), user: User{Name: u.Name, Groups: slices.Clone(u.Groups)}}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = slices.DeleteFunc(b.tokens, func(old tokenEntry) bool { return old.sum == e.sum })
	b.tokens = append(b.tokens, e)
	return nil
}

// RemoveToken stops Authenticate from accepting token; unknown tokens are ignored.
func (b *Bundle) RemoveToken(token string) {
	sum := sha256.Sum256([]byte(token))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = slices.DeleteFunc(b.tokens, func(old tokenEntry) bool { return old.sum == sum })
}

// Authenticate identifies the caller of r: a client certificate verified against the CA
// (CN → Name, O → Groups) or "Authorization: Bearer <token>" for a token in the table (the join
// token is JoinTokenUser in BootstrappersGroup). A certificate wins over a token. ok=false means
// anonymous, including an unknown token.
func (b *Bundle) Authenticate(r *http.Request) (u User, ok bool) {
	if u, ok := b.authenticateCert(r); ok {
		return u, true
	}
	token, found := parseBearer(r.Header.Get("Authorization"))
	if !found {
		return User{}, false
	}
	sum := sha256.Sum256([]byte(token))
	b.mu.RLock()
	defer b.mu.RUnlock()
	match := -1
	for i := range b.tokens { // no early exit: the time does not depend on which entry matched
		if subtle.ConstantTimeCompare(sum[:], b.tokens[i].sum[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return User{}, false
	}
	e := b.tokens[match].user
	return User{Name: e.Name, Groups: slices.Clone(e.Groups)}, true
}

// authenticateCert accepts a client certificate only if the handshake verified it to this
// bundle's CA, so a TLS config with other client CAs cannot smuggle identities in.
func (b *Bundle) authenticateCert(r *http.Request) (User, bool) {
	if r.TLS == nil {
		return User{}, false
	}
	for _, chain := range r.TLS.VerifiedChains {
		if len(chain) == 0 || !chain[len(chain)-1].Equal(b.CA) {
			continue
		}
		leaf := chain[0]
		if leaf.Subject.CommonName == "" {
			continue
		}
		return User{Name: leaf.Subject.CommonName, Groups: slices.Clone(leaf.Subject.Organization)}, true
	}
	return User{}, false
}

// parseBearer extracts the token of an "Authorization: Bearer <token>" header value; the
// scheme is case-insensitive, as RFC 9110 §11.1 says.
func parseBearer(header string) (string, bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if validToken(token) != nil {
		return "", false
	}
	return token, true
}

// validToken accepts non-empty tokens of printable ASCII without spaces: they travel in an
// HTTP header and a one-line file.
func validToken(token string) error {
	if token == "" {
		return errors.New("pki: empty token")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("pki: token has a character outside printable ASCII at byte %d", i)
		}
	}
	return nil
}

// ensureToken returns want (writing it to path if the file differs) or, when want is empty,
// the token in path, creating 32 random bytes in hex when the file is missing or empty.
func ensureToken(path, want string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pki: read token: %w", err)
	}
	have := strings.TrimSpace(string(data))
	if want != "" {
		if err := validToken(want); err != nil {
			return "", fmt.Errorf("pki: Config.Token: %w", err)
		}
		if have != want {
			if err := writeFileAtomic(path, []byte(want+"\n"), 0o600); err != nil {
				return "", err
			}
		}
		return want, nil
	}
	if have != "" {
		if err := validToken(have); err != nil {
			return "", fmt.Errorf("pki: %s: %w", path, err)
		}
		return have, nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("pki: generate token: %w", err)
	}
	token := hex.EncodeToString(raw)
	if err := writeFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	return token, nil
}

// IssueClientCert signs a client certificate (CN=user, O=groups) valid for validity (capped at
// the CA's expiry) and returns it and its new key as PEM, for node agents and tests.
func (b *Bundle) IssueClientCert(user string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("pki: client certificate needs a user name")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("pki: client certificate validity %s is not positive", validity)
	}
	spec := leafSpec{commonName: user, orgs: slices.Clone(groups), usage: x509.ExtKeyUsageClientAuth, validity: validity}
	certPEM, keyPEM, err = spec.issue(&caPair{cert: b.CA, key: b.caKey}, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue client certificate for %q: %w", user, err)
	}
	return certPEM, keyPEM, nil
}
