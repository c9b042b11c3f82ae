package printers

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/resource"
)

// Expected values in these tests are taken from upstream's own
// pkg/printers/internalversion/printers_test.go at kubernetes v1.37.2 (cases are named after the
// upstream test and case) unless a case says otherwise. Upstream compares with time.Now(); here
// the clock is fixed.

var now = time.Date(2026, time.August, 1, 12, 0, 0, 0, time.UTC)

// ago returns a timestamp d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// almostNow is upstream's time.Now().Add(1.9e9): slightly in the future, printed "0s".
var almostNow = metav1.NewTime(now.Add(1900 * time.Millisecond))

// cellsFor prints obj with the printer of gr and checks the row's shape.
func cellsFor(t *testing.T, gr schema.GroupResource, obj runtime.Object) []any {
	t.Helper()
	p := For(gr)
	cells, err := p.Cells(obj, now)
	if err != nil {
		t.Fatalf("Cells(%T): %v", obj, err)
	}
	if len(cells) != len(p.Columns) {
		t.Fatalf("Cells(%T) returned %d cells for %d columns", obj, len(cells), len(p.Columns))
	}
	return cells
}

type column struct {
	Name     string
	Type     string
	Format   string
	Priority int32
}

func c(name, typ string) column     { return column{Name: name, Type: typ} }
func cWide(name, typ string) column { return column{Name: name, Type: typ, Priority: 1} }
func cName() column                 { return column{Name: "Name", Type: "string", Format: "name"} }
func cAge() column                  { return c("Age", "string") }
func cWideName(name string) column {
	return column{Name: name, Type: "string", Format: "name", Priority: 1}
}
func gr(group, res string) schema.GroupResource {
	return schema.GroupResource{Group: group, Resource: res}
}

// TestFor_Columns checks names, types, formats and priorities against upstream AddHandlers.
func TestFor_Columns(t *testing.T) {
	tests := []struct {
		name     string
		resource schema.GroupResource
		want     []column
	}{
		{name: "configmaps", resource: gr("", "configmaps"), want: []column{cName(), c("Data", "string"), cAge()}},
		{name: "endpoints", resource: gr("", "endpoints"), want: []column{cName(), c("Endpoints", "string"), cAge()}},
		{name: "events", resource: gr("", "events"), want: []column{
			c("Last Seen", "string"), c("Type", "string"), c("Reason", "string"), c("Object", "string"),
			cWide("Subobject", "string"), cWide("Source", "string"), c("Message", "string"),
			cWide("First Seen", "string"), cWide("Count", "string"), cWideName("Name"),
		}},
		{name: "namespaces", resource: gr("", "namespaces"), want: []column{cName(), c("Status", "string"), cAge()}},
		{name: "nodes", resource: gr("", "nodes"), want: []column{
			cName(), c("Status", "string"), c("Roles", "string"), cAge(), c("Version", "string"),
			cWide("Internal-IP", "string"), cWide("External-IP", "string"), cWide("OS-Image", "string"),
			cWide("Kernel-Version", "string"), cWide("Container-Runtime", "string"),
		}},
		{name: "pods", resource: gr("", "pods"), want: []column{
			cName(), c("Ready", "string"), c("Status", "string"), c("Restarts", "string"), cAge(),
			cWide("IP", "string"), cWide("Node", "string"), cWide("Nominated Node", "string"), cWide("Readiness Gates", "string"),
		}},
		{name: "replicationcontrollers", resource: gr("", "replicationcontrollers"), want: []column{
			cName(), c("Desired", "integer"), c("Current", "integer"), c("Ready", "integer"), cAge(),
			cWide("Containers", "string"), cWide("Images", "string"), cWide("Selector", "string"),
		}},
		{name: "secrets", resource: gr("", "secrets"), want: []column{cName(), c("Type", "string"), c("Data", "string"), cAge()}},
		{name: "serviceaccounts (no Secrets column since 1.3x)", resource: gr("", "serviceaccounts"), want: []column{cName(), cAge()}},
		{name: "services", resource: gr("", "services"), want: []column{
			cName(), c("Type", "string"), c("Cluster-IP", "string"), c("External-IP", "string"),
			c("Port(s)", "string"), cAge(), cWide("Selector", "string"),
		}},
		{name: "deployments", resource: gr("apps", "deployments"), want: []column{
			cName(), c("Ready", "string"), c("Up-to-date", "string"), c("Available", "string"), cAge(),
			cWide("Containers", "string"), cWide("Images", "string"), cWide("Selector", "string"),
		}},
		{name: "replicasets", resource: gr("apps", "replicasets"), want: []column{
			cName(), c("Desired", "integer"), c("Current", "integer"), c("Ready", "integer"), cAge(),
			cWide("Containers", "string"), cWide("Images", "string"), cWide("Selector", "string"),
		}},
		{name: "leases", resource: gr("coordination.k8s.io", "leases"), want: []column{cName(), c("Holder", "string"), cAge()}},
		{name: "endpointslices", resource: gr("discovery.k8s.io", "endpointslices"), want: []column{
			cName(), c("AddressType", "string"), c("Ports", "string"), c("Endpoints", "string"), cAge(),
		}},
		{name: "ingressclasses", resource: gr("networking.k8s.io", "ingressclasses"), want: []column{
			cName(), c("Controller", "string"), c("Parameters", "string"), cAge(),
		}},
		{name: "ingresses", resource: gr("networking.k8s.io", "ingresses"), want: []column{
			cName(), c("Class", "string"), c("Hosts", "string"), c("Address", "string"), c("Ports", "string"), cAge(),
		}},
		{name: "unknown resource gets the default convertor", resource: gr("example.com", "widgets"), want: []column{
			cName(), c("Created At", "date"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := For(tc.resource)
			var got []column
			for _, def := range p.Columns {
				got = append(got, column{Name: def.Name, Type: def.Type, Format: def.Format, Priority: def.Priority})
				if def.Description == "" {
					t.Errorf("column %q has no description", def.Name)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFor_Descriptions spot-checks description text, literal strings from upstream AddHandlers
// and k8s.io/api swagger docs.
func TestFor_Descriptions(t *testing.T) {
	tests := []struct {
		name     string
		resource schema.GroupResource
		column   string
		want     string
	}{
		{name: "pod ready", resource: gr("", "pods"), column: "Ready", want: "The aggregate readiness state of this pod for accepting traffic."},
		{name: "pod restarts", resource: gr("", "pods"), column: "Restarts", want: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
		{name: "node status", resource: gr("", "nodes"), column: "Status", want: "The status of the node"},
		{name: "deployment ready", resource: gr("apps", "deployments"), column: "Ready", want: "Number of the pod with ready state"},
		{name: "ingress class", resource: gr("networking.k8s.io", "ingresses"), column: "Class", want: "The name of the IngressClass resource that should be used for additional configuration"},
		{name: "replica set containers", resource: gr("apps", "replicasets"), column: "Containers", want: "Names of each container in the template."},
		{name: "service type from swagger", resource: gr("", "services"), column: "Type", want: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
		{name: "endpointslice ports from discovery/v1, not v1beta1", resource: gr("discovery.k8s.io", "endpointslices"), column: "Ports",
			want: "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list."},
		{name: "name from object meta swagger", resource: gr("", "services"), column: "Name", want: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, def := range For(tc.resource).Columns {
				if def.Name == tc.column {
					if def.Description != tc.want {
						t.Errorf("description = %q, want %q", def.Description, tc.want)
					}
					return
				}
			}
			t.Fatalf("no column %q", tc.column)
		})
	}
}

// TestFor_CoversCatalog prints an empty object of every served resource (upstream
// TestTableRowDeepCopyShouldNotPanic does the same) and checks that each has its own printer,
// one cell per column, and cells of JSON scalar types matching the column type.
func TestFor_CoversCatalog(t *testing.T) {
	for _, info := range resource.All {
		t.Run(info.GroupResource().String(), func(t *testing.T) {
			p := For(info.GroupResource())
			if p == defaultPrinter {
				t.Fatalf("no printer for %s", info.GroupResource())
			}
			row, err := p.Row(info.New(), now)
			if err != nil {
				t.Fatal(err)
			}
			if len(row.Cells) != len(p.Columns) {
				t.Fatalf("%d cells for %d columns", len(row.Cells), len(p.Columns))
			}
			for i, cell := range row.Cells {
				switch cell.(type) {
				case string:
					if p.Columns[i].Type == "integer" {
						t.Errorf("column %q is integer but cell is a string", p.Columns[i].Name)
					}
				case int64:
				default:
					t.Errorf("column %q: cell type %T, want string or int64", p.Columns[i].Name, cell)
				}
			}
			row.DeepCopy()
			if _, err := json.Marshal(row); err != nil {
				t.Errorf("marshal row: %v", err)
			}
		})
	}
}

func TestFor_Default(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{
			name: "RFC 3339 creation time in UTC",
			obj: &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{
				Name:              "tpl",
				CreationTimestamp: metav1.NewTime(time.Date(2026, 7, 1, 14, 30, 0, 0, time.FixedZone("CEST", 2*3600))),
			}},
			want: []any{"tpl", "2026-07-01T12:30:00Z"},
		},
		{
			name: "zero creation time",
			obj:  &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "tpl"}},
			want: []any{"tpl", "0001-01-01T00:00:00Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cellsFor(t, gr("", "podtemplates"), tc.obj)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrinter_UnexpectedType(t *testing.T) {
	var nilPod *corev1.Pod
	tests := []struct {
		name     string
		resource schema.GroupResource
		obj      runtime.Object
	}{
		{name: "service printer given a pod", resource: gr("", "services"), obj: &corev1.Pod{}},
		{name: "typed nil", resource: gr("", "pods"), obj: nilPod},
		{name: "untyped nil", resource: gr("", "pods"), obj: nil},
		{name: "default printer given nil", resource: gr("example.com", "widgets"), obj: nil},
		{name: "default printer given an object without metadata", resource: gr("example.com", "widgets"), obj: &metav1.Status{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := For(tc.resource).Cells(tc.obj, now)
			if !errors.Is(err, ErrUnexpectedType) {
				t.Fatalf("err = %v, want ErrUnexpectedType", err)
			}
		})
	}
}

func TestPrinter_Rows(t *testing.T) {
	list := &corev1.ServiceList{Items: []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.2"}}},
	}}
	tests := []struct {
		name      string
		obj       runtime.Object
		wantNames []string
	}{
		{name: "list gives one row per item", obj: list, wantNames: []string{"a", "b"}},
		{name: "single object gives one row", obj: &list.Items[1], wantNames: []string{"b"}},
		{name: "empty list gives no rows", obj: &corev1.ServiceList{}, wantNames: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := For(gr("", "services")).Rows(tc.obj, now)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range rows {
				names = append(names, r.Cells[0].(string))
				if r.Object.Object == nil {
					t.Errorf("row %q has no object", r.Cells[0])
				}
			}
			if diff := cmp.Diff(tc.wantNames, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAge is upstream TestTranslateTimestampSince.
func TestAge(t *testing.T) {
	tests := []struct {
		name string
		t    metav1.Time
		want string
	}{
		{name: "a while from now", t: metav1.NewTime(now.Add(2100 * time.Millisecond)), want: "<invalid>"},
		{name: "almost now", t: almostNow, want: "0s"},
		{name: "now", t: metav1.NewTime(now), want: "0s"},
		{name: "unknown", t: metav1.Time{}, want: "<unknown>"},
		{name: "30 seconds ago", t: ago(30 * time.Second), want: "30s"},
		{name: "5 minutes ago", t: ago(5 * time.Minute), want: "5m"},
		{name: "an hour ago", t: ago(100 * time.Minute), want: "100m"},
		{name: "2 days ago", t: metav1.NewTime(now.AddDate(0, 0, -2)), want: "2d"},
		{name: "months ago", t: metav1.NewTime(now.AddDate(0, 0, -90)), want: "90d"},
		{name: "10 years ago", t: ago(10 * 365 * 24 * time.Hour), want: "10y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := age(tc.t, now); got != tc.want {
				t.Errorf("age = %q, want %q", got, tc.want)
			}
		})
	}
}
