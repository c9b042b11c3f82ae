package svcdiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"kubesvc/internal/peertest"
)

// mfStep is one request of a managedFields case. Path is relative to the API root and may
// contain $NS; Base "current" GETs Path first and merges Body onto it (RFC 7386) before a PUT.
type mfStep struct {
	method, path, contentType, query, body, userAgent, base string
}

type mfCase struct {
	name  string
	steps []mfStep
}

const (
	ctJSON  = "application/json"
	ctMerge = "application/merge-patch+json"
	ctSMP   = "application/strategic-merge-patch+json"
	ctJSONP = "application/json-patch+json"
	ctApply = "application/apply-patch+yaml"
)

const (
	svcs   = "/api/v1/namespaces/$NS/services"
	cms    = "/api/v1/namespaces/$NS/configmaps"
	deploy = "/apis/apps/v1/namespaces/$NS/deployments"
)

func svcBody(name, extra string) string {
	return `{"apiVersion":"v1","kind":"Service","metadata":{"name":"` + name + `","labels":{"app":"web"}},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80}]` + extra + `}}`
}

const deployBody = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`

// mfCases exercise field ownership: Update managers of create, PUT and every patch type
// (from ?fieldManager= or the user agent), server-side apply (create, conflicts, force,
// removal of fields, dry run), the status and scale subresources, client-side apply's
// last-applied annotation, resetting managedFields, and the errors of all of these.
var mfCases = []mfCase{
	{name: "update managers of create, PUT and patches", steps: []mfStep{
		{method: "POST", path: svcs, contentType: ctJSON, body: svcBody("web", "")},
		{method: "PUT", path: svcs + "/web", contentType: ctJSON, query: "fieldManager=editor", base: "current", body: `{"metadata":{"labels":{"tier":"a"}}}`},
		{method: "PATCH", path: svcs + "/web", contentType: ctMerge, query: "fieldManager=labeler", body: `{"metadata":{"annotations":{"a":"1"}}}`},
		{method: "PATCH", path: svcs + "/web", contentType: ctSMP, userAgent: "kubectl-edit/v1.37.2 (linux/amd64) kubernetes/abc", body: `{"spec":{"sessionAffinity":"ClientIP"}}`},
		{method: "PATCH", path: svcs + "/web", contentType: ctJSONP, query: "fieldManager=jp", body: `[{"op":"add","path":"/metadata/labels/x","value":"y"}]`},
		{method: "PUT", path: svcs + "/web", contentType: ctJSON, query: "fieldManager=noop", base: "current", body: `{}`},
		{method: "PATCH", path: svcs + "/web", contentType: ctMerge, query: "fieldManager=editor", body: `{"metadata":{"labels":{"tier":null}}}`},
		{method: "GET", path: svcs + "/web"},
	}},
	{name: "apply conflicts, shared ownership, force and removal", steps: []mfStep{
		{method: "POST", path: svcs, contentType: ctJSON, query: "fieldManager=creator", body: svcBody("web", "")},
		{method: "PATCH", path: svcs + "/web", contentType: ctApply, query: "fieldManager=ssa", body: strings.Replace(svcBody("web", ""), `"selector":{"app":"web"}`, `"selector":{"app":"other"}`, 1)},
		{method: "PATCH", path: svcs + "/web", contentType: ctApply, query: "fieldManager=ssa&force=false", body: svcBody("web", `,"sessionAffinity":"None"`)},
		{method: "PATCH", path: svcs + "/web", contentType: ctApply, query: "fieldManager=ssa2", body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"x"}},"spec":{"selector":{"app":"x"},"sessionAffinity":"ClientIP"}}`},
		{method: "PATCH", path: svcs + "/web", contentType: ctApply, query: "fieldManager=ssa&force=true", body: strings.Replace(svcBody("web", ""), `"selector":{"app":"web"}`, `"selector":{"app":"other"}`, 1)},
		{method: "PATCH", path: svcs + "/web", contentType: ctApply, query: "fieldManager=ssa", body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"other"},"ports":[{"name":"http","port":80},{"name":"https","port":443}]}}`},
		{method: "GET", path: svcs + "/web"},
	}},
	{name: "apply create, dry run, no-op re-apply and status", steps: []mfStep{
		{method: "PATCH", path: svcs + "/lb", contentType: ctApply, query: "fieldManager=ssa&dryRun=All", body: svcBody("lb", `,"type":"LoadBalancer"`)},
		{method: "GET", path: svcs + "/lb"},
		{method: "PATCH", path: svcs + "/lb", contentType: ctApply, query: "fieldManager=ssa", body: svcBody("lb", `,"type":"LoadBalancer"`)},
		{method: "PATCH", path: svcs + "/lb", contentType: ctApply, query: "fieldManager=ssa", body: svcBody("lb", `,"type":"LoadBalancer"`)},
		{method: "PUT", path: svcs + "/lb/status", contentType: ctJSON, query: "fieldManager=lbctl", base: "current", body: `{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1","ipMode":"VIP"}]}}}`},
		{method: "PATCH", path: svcs + "/lb/status", contentType: ctApply, query: "fieldManager=other", body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"lb"},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.2","ipMode":"VIP"}]}}}`},
		{method: "PATCH", path: svcs + "/lb/status", contentType: ctApply, query: "fieldManager=other&force=true", body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"lb"},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.2","ipMode":"VIP"}]}}}`},
		{method: "PATCH", path: svcs + "/lb", contentType: ctApply, query: "fieldManager=ssa", body: svcBody("lb", `,"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.3"}]}`)},
		// kube-apiserver creates a Service applied to /status when it is missing (services
		// allow create-on-update), but without allocating its clusterIP (its status store has
		// no BeginCreate); kubesvc creates it through the normal create path, so only the
		// failing create is compared.
		{method: "PATCH", path: svcs + "/missing/status", contentType: ctApply, query: "fieldManager=other", body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"missing"}}`},
		{method: "PATCH", path: deploy + "/missing/status", contentType: ctApply, query: "fieldManager=other", body: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"missing"}}`},
		{method: "PATCH", path: svcs + "/missing/status", contentType: ctMerge, query: "fieldManager=other", body: `{}`},
		{method: "GET", path: svcs + "/lb"},
	}},
	{name: "scale subresource maps replicas ownership", steps: []mfStep{
		{method: "PATCH", path: deploy + "/d", contentType: ctApply, query: "fieldManager=ssa", body: deployBody},
		{method: "PUT", path: deploy + "/d/scale", contentType: ctJSON, query: "fieldManager=scaler", base: "current", body: `{"spec":{"replicas":3}}`},
		{method: "GET", path: deploy + "/d"},
		{method: "PATCH", path: deploy + "/d/scale", contentType: ctMerge, query: "fieldManager=hpa", body: `{"spec":{"replicas":4}}`},
		{method: "PATCH", path: deploy + "/d", contentType: ctApply, query: "fieldManager=ssa", body: strings.Replace(deployBody, `"replicas":2`, `"replicas":5`, 1)},
		{method: "PATCH", path: deploy + "/d/scale", contentType: ctApply, query: "fieldManager=ssa-scale&force=true", body: `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":6}}`},
		{method: "GET", path: deploy + "/d"},
		{method: "PATCH", path: deploy + "/d/status", contentType: ctMerge, query: "fieldManager=ctl", body: `{"status":{"observedGeneration":1}}`},
		{method: "GET", path: deploy + "/d"},
	}},
	{name: "client-side apply annotation, then server-side apply", steps: []mfStep{
		{method: "POST", path: cms, contentType: ctJSON, query: "fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"c\",\"namespace\":\"$NS\"}}\n"}},"data":{"a":"1"}}`},
		{method: "PATCH", path: cms + "/c", contentType: ctApply, query: "fieldManager=kubectl&fieldValidation=Strict&force=false", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"$NS"},"data":{"a":"2","b":"3"}}`},
		{method: "GET", path: cms + "/c"},
	}},
	{name: "resetting and setting managedFields", steps: []mfStep{
		{method: "POST", path: cms, contentType: ctJSON, query: "fieldManager=a", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}`},
		{method: "PATCH", path: cms + "/c", contentType: ctMerge, query: "fieldManager=b", body: `{"metadata":{"managedFields":[{}]},"data":{"b":"2"}}`},
		{method: "PATCH", path: cms + "/c", contentType: ctMerge, query: "fieldManager=b", body: `{"data":{"c":"3"}}`},
		{method: "PUT", path: cms + "/c", contentType: ctJSON, query: "fieldManager=c", base: "current",
			body: `{"metadata":{"managedFields":[{"manager":"hand","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}}]}}`},
		{method: "PATCH", path: cms + "/c", contentType: ctApply, query: "fieldManager=ssa", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"9"}}`},
		{method: "POST", path: cms, contentType: ctJSON, query: "fieldManager=a", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","managedFields":[{"manager":"given","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:x":{}}}}]},"data":{"x":"1"}}`},
	}},
	{name: "namespace finalize", steps: []mfStep{
		{method: "POST", path: "/api/v1/namespaces", contentType: ctJSON, query: "fieldManager=nsc", body: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"$NS-fin"}}`},
		{method: "PUT", path: "/api/v1/namespaces/$NS-fin/finalize", contentType: ctJSON, query: "fieldManager=fin", base: "/api/v1/namespaces/$NS-fin", body: `{"spec":{"finalizers":["example.com/x"]}}`},
		{method: "PATCH", path: "/api/v1/namespaces/$NS-fin", contentType: ctApply, query: "fieldManager=ssa", body: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"$NS-fin","labels":{"a":"b"}}}`},
	}},
	{name: "option and body errors", steps: []mfStep{
		{method: "PATCH", path: cms + "/e", contentType: ctApply, body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "POST", path: cms, contentType: ctJSON, query: "fieldManager=" + strings.Repeat("x", 129), body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "POST", path: cms, contentType: ctJSON, query: "fieldManager=a%01b", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "POST", path: cms, contentType: ctJSON, userAgent: "\t" + strings.Repeat("é", 70) + "/1", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"},"data":{"k":"v"}}`},
		{method: "PUT", path: cms + "/e", contentType: ctJSON, query: "fieldManager=" + strings.Repeat("y", 200), body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctMerge, query: "force=true", body: `{"data":{"a":"1"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"e"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e","managedFields":[]}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"},"spec":{"a":1}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m&fieldValidation=Strict", body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e\ndata:\n  a: \"1\"\n  a: \"2\"\n"},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e\ndata:\n  a: \"1\"\n  a: \"2\"\n"},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e","namespace":"elsewhere"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e","uid":"6b1a3a5e-0000-4000-8000-000000000001"}}`},
		{method: "PATCH", path: cms + "/fresh", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fresh","uid":"6b1a3a5e-0000-4000-8000-000000000001"}}`},
		{method: "PATCH", path: cms + "/fresh", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fresh","resourceVersion":"5"},"data":{"a":"1"}}`},
		{method: "PATCH", path: cms + "/fresh2", contentType: ctApply, query: "fieldManager=m&fieldValidation=Strict", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fresh2"},"spec":{"a":1}}`},
		{method: "PATCH", path: "/api/v1/namespaces/nowhere/configmaps/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: "a: [b"},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `["a"]`},
		{method: "PATCH", path: cms + "/e", contentType: "application/apply-patch+cbor", query: "fieldManager=m", body: `{}`},
		{method: "PATCH", path: cms + "/e", contentType: "text/plain", body: `{}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e"},"data":{"a":"1"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctMerge, query: "fieldManager=m2", body: `{"metadata":{"name":"renamed"}}`},
		{method: "PATCH", path: cms + "/e", contentType: ctApply, query: "fieldManager=m2", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"e","resourceVersion":"1"},"data":{"a":"1"}}`},
	}},
}

// mfRecord is one answer as compared: the object with its managedFields (times masked).
type mfRecord struct {
	Step          string    `json:"step"`
	Code          int       `json:"code"`
	Warnings      []string  `json:"warnings,omitempty"`
	Object        any       `json:"object,omitempty"`
	ManagedFields any       `json:"managedFields,omitempty"`
	Error         *apiError `json:"error,omitempty"`
}

// doMF sends one request with an optional user agent and returns code, body and warnings.
func doMF(tg *target, method, path, contentType, userAgent string, body []byte) (int, []byte, []string, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, tg.host+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := tg.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s %s: %w", tg.name, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header.Values("Warning"), err
}

func (s mfStep) run(tg *target, ns string) (int, []byte, []string, error) {
	path := substitute(s.path, ns)
	body := []byte(substitute(s.body, ns))
	if s.base != "" {
		get := path
		if s.base != "current" {
			get = substitute(s.base, ns)
		}
		code, cur, _, err := doMF(tg, "GET", get, "", "", nil)
		if err != nil || code != http.StatusOK {
			return code, cur, nil, err
		}
		if body, err = jsonpatch.MergePatch(cur, body); err != nil {
			return 0, nil, nil, fmt.Errorf("merge body onto current: %w", err)
		}
	}
	if s.query != "" {
		path += "?" + s.query
	}
	return doMF(tg, s.method, path, s.contentType, s.userAgent, body)
}

// maskMF turns answers into records: allocated values, uids, resourceVersions and times
// masked as in the corpus test, managedFields kept apart with their times masked.
func maskMF(m *masker, label string, code int, body []byte, warnings []string) mfRecord {
	r := mfRecord{Step: label, Code: code, Warnings: warnings}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		r.Object = "non-JSON body: " + string(body)
		return r
	}
	if v["kind"] == "Status" && code >= 300 {
		r.Error = mask(m, []raw{{code: code, body: body}})[0].Error
		// Apply conflicts come in the order of a map iteration over managers, on both servers.
		sort.SliceStable(r.Error.Causes, func(i, j int) bool { return r.Error.Causes[i].Message < r.Error.Causes[j].Message })
		return r
	}
	if md, ok := v["metadata"].(map[string]any); ok {
		if mf, ok := md["managedFields"].([]any); ok {
			for _, e := range mf {
				if e, ok := e.(map[string]any); ok && e["time"] != nil {
					e["time"] = "<time>"
				}
			}
			// Both servers order entries by operation, then time (in whole seconds), then
			// manager and subresource (apimachinery's sortEncodedManagedFields). With the
			// time masked, whether two steps fell in one second is timing, not behaviour:
			// compare in the order that ignores it.
			slices.SortStableFunc(mf, func(a, b any) int {
				am, _ := a.(map[string]any)
				bm, _ := b.(map[string]any)
				for _, k := range []string{"operation", "manager", "subresource"} {
					as, _ := am[k].(string)
					bs, _ := bm[k].(string)
					if c := strings.Compare(as, bs); c != 0 {
						return c
					}
				}
				return 0
			})
			r.ManagedFields = mf
		}
	}
	r.Object = m.object(v)
	return r
}

// TestManagedFields_MatchKubeAPIServer compares field ownership (metadata.managedFields) and
// server-side apply answers of kubesvc with kube-apiserver v1.37.2's, request by request.
func TestManagedFields_MatchKubeAPIServer(t *testing.T) {
	peertest.SkipIfMissing(t, peertest.EtcdBinary, peertest.KubeAPIServerBinary)
	p := startPair(t, clusters[""])
	matched := 0
	var report strings.Builder
	for i, c := range mfCases {
		ns := fmt.Sprintf("mf-%02d", i)
		for _, tg := range []*target{p.kube, p.ours} {
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)
			if code, data, err := tg.do("POST", "/api/v1/namespaces", "application/json", []byte(body)); err != nil || code != http.StatusCreated {
				t.Fatalf("%s: create namespace %s: %d %s %v", tg.name, ns, code, data, err)
			}
		}
		cidrs := []netip.Prefix{netip.MustParsePrefix(p.cl.serviceCIDR)}
		mk, mo := newMasker(nil, cidrs, p.cl.portLo, p.cl.portHi), newMasker(nil, cidrs, p.cl.portLo, p.cl.portHi)
		var kube, ours []mfRecord
		for j, s := range c.steps {
			label := fmt.Sprintf("%d %s %s %s %s", j+1, s.method, s.path, s.contentType, s.query)
			for _, x := range []struct {
				tg  *target
				m   *masker
				out *[]mfRecord
			}{{p.kube, mk, &kube}, {p.ours, mo, &ours}} {
				code, body, warnings, err := s.run(x.tg, ns)
				if err != nil {
					t.Fatalf("case %q step %s on %s: %v", c.name, label, x.tg.name, err)
				}
				*x.out = append(*x.out, maskMF(x.m, label, code, body, warnings))
			}
		}
		if os.Getenv("SVCDIFF_DUMP") != "" {
			ka, _ := json.MarshalIndent(kube, "", "  ")
			kb, _ := json.MarshalIndent(ours, "", "  ")
			fmt.Printf("=== %s\n--- kube-apiserver\n%s\n--- kubesvc\n%s\n", c.name, ka, kb)
		}
		if d := cmp.Diff(toGeneric(kube), toGeneric(ours)); d != "" {
			fmt.Fprintf(&report, "\nMISMATCH %s\n(-kube-apiserver +kubesvc)\n%s", c.name, d)
			continue
		}
		matched++
	}
	t.Logf("%s\nmatched %d of %d", report.String(), matched, len(mfCases))
	if matched < len(mfCases) {
		t.Errorf("managedFields: matched %d of %d cases", matched, len(mfCases))
	}
}
