// Package envvars computes a container's environment as the kubelet does
// (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, pkg/kubelet/envvars): the Service
// variables of k8s-service-spec.md §3 (ENV-01…07), envFrom, env with $(VAR) expansion, field
// and resource references, ConfigMap and Secret keys.
//
// Imported by internal/agent.
package envvars

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MasterServices are the Services of the default namespace every pod gets variables for
// (the kubelet's master service namespace).
var MasterServices = []string{"kubernetes"}

// isServiceIPSet is v1helper.IsServiceIPSet: headless and ExternalName Services have none.
func isServiceIPSet(s *corev1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone
}

// ServiceMap returns the Service variables of a pod in namespace ns (ENV-01…04): the master
// Services of the default namespace always, the pod namespace's Services when links are
// enabled; a same-named Service of the pod's namespace overrides a master one.
func ServiceMap(services []*corev1.Service, ns string, enableServiceLinks bool) map[string]string {
	chosen := map[string]*corev1.Service{}
	for _, s := range services {
		if !isServiceIPSet(s) {
			continue
		}
		isMaster := false
		for _, m := range MasterServices {
			isMaster = isMaster || s.Name == m
		}
		switch {
		case s.Namespace == metav1.NamespaceDefault && isMaster:
			if _, exists := chosen[s.Name]; !exists {
				chosen[s.Name] = s
			}
		case s.Namespace == ns && enableServiceLinks:
			chosen[s.Name] = s
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, n := range names {
		for _, e := range FromService(chosen[n]) {
			out[e.Name] = e.Value
		}
	}
	return out
}

// FromService returns the variables of one Service in the kubelet's order (ENV-03).
func FromService(s *corev1.Service) []corev1.EnvVar {
	if len(s.Spec.Ports) == 0 {
		return nil
	}
	prefix := Mangle(s.Name)
	ip := s.Spec.ClusterIP
	out := []corev1.EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: ip},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			out = append(out, corev1.EnvVar{Name: prefix + "_SERVICE_PORT_" + Mangle(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != "" {
			proto = string(p.Protocol)
		}
		hp := net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))
		url := strings.ToLower(proto) + "://" + hp
		if i == 0 {
			out = append(out, corev1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		out = append(out,
			corev1.EnvVar{Name: pp, Value: url},
			corev1.EnvVar{Name: pp + "_PROTO", Value: strings.ToLower(proto)},
			corev1.EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			corev1.EnvVar{Name: pp + "_ADDR", Value: ip},
		)
	}
	return out
}

// Mangle is ENV-02: upper case, '-' → '_'.
func Mangle(s string) string { return strings.ReplaceAll(strings.ToUpper(s), "-", "_") }

// Sources reads the ConfigMaps and Secrets a container refers to. Get errors for missing
// objects must satisfy apierrors.IsNotFound.
type Sources interface {
	ConfigMap(ns, name string) (*corev1.ConfigMap, error)
	Secret(ns, name string) (*corev1.Secret, error)
}

// Pod is what field references of a running pod resolve against.
type Pod struct {
	Pod     *corev1.Pod
	PodIPs  []string
	HostIPs []string
	// NodeAllocatable resolves resourceFieldRef limits a container does not set.
	NodeAllocatable corev1.ResourceList
}

// ConfigError is a container configuration the kubelet rejects with
// CreateContainerConfigError (a missing ConfigMap or Secret or key).
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Container returns the container's variables (kubelet makeEnvironmentVariables): envFrom,
// then env (later entries override, values expanded against what is defined so far and the
// Service variables), then Service variables not already defined (ENV-05). The result is
// sorted by name (ENV-06).
func Container(p Pod, c *corev1.Container, services map[string]string, src Sources) ([]corev1.EnvVar, error) {
	ns := p.Pod.Namespace
	tmp := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			ref := from.ConfigMapRef
			cm, err := src.ConfigMap(ns, ref.Name)
			if err != nil {
				if optional(ref.Optional) && isNotFound(err) {
					continue
				}
				return nil, configErr(err, fmt.Sprintf("configmap %q not found", ref.Name))
			}
			for k, v := range cm.Data {
				if validName(from.Prefix + k) {
					tmp[from.Prefix+k] = v
				}
			}
		case from.SecretRef != nil:
			ref := from.SecretRef
			s, err := src.Secret(ns, ref.Name)
			if err != nil {
				if optional(ref.Optional) && isNotFound(err) {
					continue
				}
				return nil, configErr(err, fmt.Sprintf("secret %q not found", ref.Name))
			}
			for k, v := range s.Data {
				if validName(from.Prefix + k) {
					tmp[from.Prefix+k] = string(v)
				}
			}
		}
	}
	mapping := func(name string) (string, bool) {
		if v, ok := tmp[name]; ok {
			return v, true
		}
		v, ok := services[name]
		return v, ok
	}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case val != "":
			val = Expand(val, mapping)
		case e.ValueFrom != nil:
			v, ok, err := valueFrom(p, c, e.ValueFrom, src)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			val = v
		}
		tmp[e.Name] = val
	}
	for k, v := range services {
		if _, ok := tmp[k]; !ok {
			tmp[k] = v
		}
	}
	out := make([]corev1.EnvVar, 0, len(tmp))
	for k, v := range tmp {
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func optional(b *bool) bool { return b != nil && *b }

func validName(k string) bool { return k != "" && !strings.Contains(k, "=") }

type notFound interface{ Status() metav1.Status }

func isNotFound(err error) bool {
	if s, ok := err.(notFound); ok {
		return s.Status().Reason == metav1.StatusReasonNotFound
	}
	return false
}

func configErr(err error, notFoundMsg string) error {
	if isNotFound(err) {
		return &ConfigError{Msg: notFoundMsg}
	}
	return err
}

// valueFrom resolves one env source; ok=false skips the variable (an optional missing key).
func valueFrom(p Pod, c *corev1.Container, from *corev1.EnvVarSource, src Sources) (string, bool, error) {
	ns := p.Pod.Namespace
	switch {
	case from.FieldRef != nil:
		v, err := FieldValue(p, from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := resourceValue(p, c, from.ResourceFieldRef)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := src.ConfigMap(ns, ref.Name)
		if err != nil {
			if optional(ref.Optional) && isNotFound(err) {
				return "", false, nil
			}
			return "", false, configErr(err, fmt.Sprintf("configmap %q not found", ref.Name))
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if b, bok := cm.BinaryData[ref.Key]; bok {
				return string(b), true, nil
			}
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &ConfigError{Msg: fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.Key, ns, ref.Name)}
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := src.Secret(ns, ref.Name)
		if err != nil {
			if optional(ref.Optional) && isNotFound(err) {
				return "", false, nil
			}
			return "", false, configErr(err, fmt.Sprintf("secret %q not found", ref.Name))
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &ConfigError{Msg: fmt.Sprintf("couldn't find key %s in Secret %s/%s", ref.Key, ns, ref.Name)}
		}
		return string(v), true, nil
	}
	return "", true, nil
}

// FieldValue resolves a downward-API field path of the pod.
func FieldValue(p Pod, path string) (string, error) {
	pod := p.Pod
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(p.HostIPs), nil
	case "status.hostIPs":
		return strings.Join(p.HostIPs, ","), nil
	case "status.podIP":
		return first(p.PodIPs), nil
	case "status.podIPs":
		return strings.Join(p.PodIPs, ","), nil
	}
	return "", &ConfigError{Msg: fmt.Sprintf("unsupported fieldPath: %s", path)}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// subscript parses "prefix['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// formatMap is the downward API's key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceValue resolves limits.* and requests.* with the divisor, rounding up, as
// pkg/api/v1/resource.ExtractContainerResourceValue; unset limits are the node's allocatable.
func resourceValue(p Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", &ConfigError{Msg: fmt.Sprintf("unsupported container resource: %v", ref.Resource)}
	}
	var q resource.Quantity
	var have bool
	switch kind {
	case "limits":
		q, have = c.Resources.Limits[corev1.ResourceName(name)]
		if !have {
			q, have = p.NodeAllocatable[corev1.ResourceName(name)]
		}
	case "requests":
		q, have = c.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", &ConfigError{Msg: fmt.Sprintf("unsupported container resource: %v", ref.Resource)}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if !have {
		if name == "cpu" || name == "memory" || name == "ephemeral-storage" {
			return "0", nil
		}
		return "", &ConfigError{Msg: fmt.Sprintf("unsupported container resource: %v", ref.Resource)}
	}
	if name == "cpu" {
		v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
		return strconv.FormatInt(v, 10), nil
	}
	v := int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))
	return strconv.FormatInt(v, 10), nil
}
