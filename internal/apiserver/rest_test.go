package apiserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCreate_StrategyWarningsBecomeWarningHeaders(t *testing.T) {
	s := newTestServer(t)
	body := []byte(`{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"ep"},"subsets":[{"addresses":[{"ip":"2001:DB8::1"}],"ports":[{"port":80}]}]}`)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/namespaces/default/endpoints", bytes.NewReader(body))
	r.Header.Set("Content-Type", mimeJSON)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	warn := strings.Join(w.Header().Values("Warning"), "\n")
	if !strings.HasPrefix(warn, `299 - "`) || !strings.Contains(warn, "2001:DB8::1") {
		t.Fatalf("Warning headers %q: want a 299 warning about the non-canonical IP", warn)
	}
}
