package all

import (
	"context"
	"encoding/json"
	"testing"

	"kubesvc/internal/resource"
)

// fuzzSeeds are objects of every kind (valid ones from the unit tests plus edge cases);
// each seed is decoded into every kind.
var fuzzSeeds = []string{
	`{}`,
	`{"metadata":{"name":"web","namespace":"default"},"spec":{"containers":[{"name":"app","image":"nginx:1.25","ports":[{"name":"http","containerPort":80}],"readinessProbe":{"httpGet":{"port":"http"}},"resources":{"limits":{"cpu":"200m"}}}],"volumes":[{"name":"data"}]}}`,
	`{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}},"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":"150%"}}}}`,
	`{"metadata":{"name":"web","namespace":"default"},"spec":{"selector":{"app":"web"},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`,
	`{"metadata":{"name":"n1"},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["fd00::/64","10.0.0.0/8","x"],"taints":[{"key":"k","effect":"NoSchedule"},{"key":"k","effect":"NoSchedule"}]},"status":{"capacity":{"cpu":"-4"}}}`,
	`{"metadata":{"name":"e","namespace":"default"},"involvedObject":{"kind":"Pod","namespace":"x"},"eventTime":"2026-01-01T00:00:00.000000Z","series":{"count":1}}`,
	`{"metadata":{"name":"s","namespace":"default"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30="},"stringData":{"a/b":"c"}}`,
	`{"metadata":{"name":"svc","namespace":"default"},"spec":{"type":"NodePort","clusterIP":"None","ports":[{"port":80,"targetPort":"http"}],"ipFamilies":["IPv6","IPv4","IPv4"]}}`,
	`{"metadata":{"name":"p","namespace":"default"},"spec":{"hostNetwork":true,"initContainers":[{"name":"i","image":"x","restartPolicy":"Always","lifecycle":{"preStop":{"sleep":{"seconds":99}}}}],"containers":[{"name":"c","image":"x","env":[{"name":"A","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['a']"}}}],"envFrom":[{}],"volumeMounts":[{"name":"v","mountPath":"/a","subPath":"../x"}]}],"volumes":[{"name":"v","hostPath":{"path":"/x"},"emptyDir":{}}],"dnsPolicy":"None","dnsConfig":{"nameservers":["1.1.1.1","x","2.2.2.2","3.3.3.3"]}},"status":{"podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.2"},{"ip":"10.0.0.3"}]}}`,
	`{"metadata":{"name":"l","namespace":"kube-system"},"spec":{"leaseDurationSeconds":-1,"strategy":"a/b/c","preferredHolder":"x"}}`,
	`{"metadata":{"name":"ing","namespace":"default"},"spec":{"rules":[{"host":"*.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}`,
	`{"metadata":{"name":"es","namespace":"default"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"]}],"ports":[{"port":80}]}`,
	`{"metadata":{"name":"ep","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}`,
}

// FuzzDecodeDefaultValidate checks that any JSON body, decoded into any served kind, goes
// through the whole create, update and status-update paths without panicking.
func FuzzDecodeDefaultValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	kinds := Kinds(Config{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, info := range resource.All {
			k := kinds[info.GroupResource()]
			obj := info.New()
			if err := json.Unmarshal(data, obj); err != nil {
				continue
			}
			old := obj.DeepCopyObject()
			k.Strategy.Default(obj)
			k.Strategy.PrepareForCreate(ctx, obj)
			_ = k.Strategy.Validate(ctx, obj)
			if k.Fields != nil {
				_ = k.Fields(obj)
			}

			// Update from the created object to the raw body, and the reverse.
			k.Strategy.Default(old)
			upd := info.New()
			_ = json.Unmarshal(data, upd)
			k.Strategy.Default(upd)
			k.Strategy.PrepareForUpdate(ctx, upd, obj)
			_ = k.Strategy.ValidateUpdate(ctx, upd, obj)
			k.Strategy.PrepareForUpdate(ctx, old, obj)
			_ = k.Strategy.ValidateUpdate(ctx, old, obj)
			if k.Status != nil {
				st := info.New()
				_ = json.Unmarshal(data, st)
				k.Strategy.Default(st)
				k.Status.PrepareForUpdate(ctx, st, obj)
				_ = k.Status.ValidateUpdate(ctx, st, obj)
			}
		}
	})
}
