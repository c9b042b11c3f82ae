package endpointslicemirroring

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/controller/subsets"
)

// reconciler turns one Endpoints object into creates, updates and deletes of its mirrored
// slices (upstream endpointslicemirroring reconciler).
type reconciler struct {
	client       kubernetes.Interface
	tracker      *esutil.EndpointSliceTracker
	recorder     record.EventRecorder
	maxPerSubset int32
}

// addrTypePortMapKey identifies a slice group: address type plus port set (EP-M-03).
type addrTypePortMapKey string

func newAddrTypePortMapKey(ports []discovery.EndpointPort, addrType discovery.AddressType) addrTypePortMapKey {
	return addrTypePortMapKey(fmt.Sprintf("%s-%s", addrType, esutil.NewPortMapKey(ports)))
}

func (k addrTypePortMapKey) addressType() discovery.AddressType {
	if strings.HasPrefix(string(k), string(discovery.AddressTypeIPv6)) {
		return discovery.AddressTypeIPv6
	}
	return discovery.AddressTypeIPv4
}

// desired is the mirrored state: endpoints and ports per slice group.
type desired struct {
	ports     map[addrTypePortMapKey][]discovery.EndpointPort
	endpoints map[addrTypePortMapKey]esutil.EndpointSet
}

// slicesByAction are the writes of one reconcile.
type slicesByAction struct {
	toCreate, toUpdate, toDelete []*discovery.EndpointSlice
}

// desiredState computes the desired groups from the repacked subsets of endpoints; at most
// maxPerSubset addresses per subset, invalid IPs skipped. It returns the numbers of invalid
// and skipped (invalid or over the limit) addresses.
func (r *reconciler) desiredState(endpoints *corev1.Endpoints) (d desired, invalid, skipped int) {
	d = desired{ports: map[addrTypePortMapKey][]discovery.EndpointPort{}, endpoints: map[addrTypePortMapKey]esutil.EndpointSet{}}
	for _, subset := range subsets.Repack(endpoints.Subsets) {
		ports := epPortsToSlicePorts(subset.Ports)
		keys := map[discovery.AddressType]addrTypePortMapKey{}
		for _, t := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
			keys[t] = newAddrTypePortMapKey(ports, t)
			if _, ok := d.endpoints[keys[t]]; !ok {
				d.endpoints[keys[t]] = esutil.EndpointSet{}
			}
			d.ports[keys[t]] = ports
		}
		added := 0
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				if added >= int(r.maxPerSubset) {
					return
				}
				ep, t, ok := addressToEndpoint(a, ready)
				if !ok {
					invalid++
					continue
				}
				d.endpoints[keys[t]].Insert(ep)
				added++
			}
		}
		add(subset.Addresses, true)
		add(subset.NotReadyAddresses, false)
		skipped += len(subset.Addresses) + len(subset.NotReadyAddresses) - added
	}
	return d, invalid, skipped
}

func (r *reconciler) reconcile(ctx context.Context, endpoints *corev1.Endpoints, existing []*discovery.EndpointSlice) error {
	logger := klog.FromContext(ctx)
	d, invalid, skipped := r.desiredState(endpoints)
	if invalid > 0 {
		r.recorder.Eventf(endpoints, corev1.EventTypeWarning, "InvalidIPAddress",
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", invalid)
	}
	if skipped > invalid {
		logger.Info("Addresses in Endpoints were skipped due to exceeding MaxEndpointsPerSubset", "skippedAddresses", skipped, "endpoints", klog.KObj(endpoints))
		r.recorder.Eventf(endpoints, corev1.EventTypeWarning, "TooManyAddressesToMirror",
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", r.maxPerSubset, skipped)
	}
	existingByKey := map[addrTypePortMapKey][]*discovery.EndpointSlice{}
	for _, s := range existing {
		k := newAddrTypePortMapKey(s.Ports, s.AddressType)
		existingByKey[k] = append(existingByKey[k], s)
	}
	var all slicesByAction
	for key, eps := range d.endpoints {
		s := r.reconcileGroup(endpoints, existingByKey[key], eps, d.ports[key], key.addressType())
		all.toCreate = append(all.toCreate, s.toCreate...)
		all.toUpdate = append(all.toUpdate, s.toUpdate...)
		all.toDelete = append(all.toDelete, s.toDelete...)
	}
	for key, slices := range existingByKey {
		if _, ok := d.endpoints[key]; !ok {
			all.toDelete = append(all.toDelete, slices...)
		}
	}
	return r.finalize(ctx, endpoints, all)
}

// reconcileGroup keeps one slice per group: the first existing slice is rewritten (or left
// alone when it already matches), any others are deleted.
func (r *reconciler) reconcileGroup(endpoints *corev1.Endpoints, existing []*discovery.EndpointSlice, want esutil.EndpointSet, ports []discovery.EndpointPort, addrType discovery.AddressType) slicesByAction {
	var out slicesByAction
	if want.Len() == 0 {
		out.toDelete = existing
		return out
	}
	var name string
	if len(existing) > 0 {
		out.toDelete = existing[1:]
		first := existing[0]
		wantAnnotations := withoutKeys(endpoints.Annotations, corev1.EndpointsLastChangeTriggerTime, corev1.LastAppliedConfigAnnotation)
		haveLabels := withoutKeys(first.Labels, discovery.LabelManagedBy, discovery.LabelServiceName)
		if unchanged(first, want) &&
			apiequality.Semantic.DeepEqual(endpoints.Labels, haveLabels) &&
			apiequality.Semantic.DeepEqual(wantAnnotations, first.Annotations) &&
			!ownedByOtherEndpoints(endpoints, first) {
			if !r.tracker.Has(first) {
				r.tracker.Update(first)
			}
			return out
		}
		name = first.Name
	}
	s := newSlice(endpoints, ports, addrType, name)
	for want.Len() > 0 && len(s.Endpoints) < int(r.maxPerSubset) {
		ep, _ := want.PopAny()
		s.Endpoints = append(s.Endpoints, *ep)
	}
	if s.Name != "" {
		out.toUpdate = append(out.toUpdate, s)
	} else {
		out.toCreate = append(out.toCreate, s)
	}
	return out
}

// unchanged reports whether slice holds exactly the wanted endpoints.
func unchanged(slice *discovery.EndpointSlice, want esutil.EndpointSet) bool {
	matches := 0
	for i := range slice.Endpoints {
		got := want.Get(&slice.Endpoints[i])
		if got == nil || !esutil.EndpointsEqualBeyondHash(got, &slice.Endpoints[i]) {
			return false
		}
		matches++
	}
	return matches == want.Len()
}

// ownedByOtherEndpoints reports whether slice belongs to an earlier Endpoints object of the
// same name (different UID): it must be rewritten with the new owner.
func ownedByOtherEndpoints(endpoints *corev1.Endpoints, slice *discovery.EndpointSlice) bool {
	for _, o := range slice.OwnerReferences {
		if o.Kind == "Endpoints" && o.Name == endpoints.Name && o.UID != endpoints.UID {
			return true
		}
	}
	return false
}

// finalize turns creates that coincide with deletes of the same address type into updates
// (reusing names), then writes.
func (r *reconciler) finalize(ctx context.Context, endpoints *corev1.Endpoints, s slicesByAction) error {
	recycle(&s)
	client := r.client.DiscoveryV1().EndpointSlices(endpoints.Namespace)
	if endpoints.DeletionTimestamp == nil {
		for _, slice := range s.toCreate {
			created, err := client.Create(ctx, slice, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("create EndpointSlice for Endpoints %s/%s: %w", endpoints.Namespace, endpoints.Name, err)
			}
			r.tracker.Update(created)
		}
	}
	for _, slice := range s.toUpdate {
		updated, err := client.Update(ctx, slice, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update EndpointSlice %s for Endpoints %s/%s: %w", slice.Name, endpoints.Namespace, endpoints.Name, err)
		}
		r.tracker.Update(updated)
	}
	for _, slice := range s.toDelete {
		if err := client.Delete(ctx, slice.Name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete EndpointSlice %s for Endpoints %s/%s: %w", slice.Name, endpoints.Namespace, endpoints.Name, err)
		}
		r.tracker.ExpectDeletion(slice)
	}
	return nil
}

func (r *reconciler) deleteSlices(ctx context.Context, namespace, name string, slices []*discovery.EndpointSlice) error {
	var errs []error
	for _, s := range slices {
		if err := r.client.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("delete mirrored EndpointSlice %s/%s of %s: %w", namespace, s.Name, name, err))
		}
	}
	return errors.Join(errs...)
}

// recycle replaces, per address type, pairs of (create, delete) by an update of the slice
// that would have been deleted.
func recycle(s *slicesByAction) {
	creates := byAddrType(s.toCreate)
	deletes := byAddrType(s.toDelete)
	for t, cs := range creates {
		ds := deletes[t]
		for i := 0; i < len(cs) && i < len(ds); i++ {
			s.toCreate = removeSlice(s.toCreate, cs[i])
			s.toDelete = removeSlice(s.toDelete, ds[i])
			cs[i].Name = ds[i].Name
			s.toUpdate = append(s.toUpdate, cs[i])
		}
	}
}

func removeSlice(list []*discovery.EndpointSlice, x *discovery.EndpointSlice) []*discovery.EndpointSlice {
	for i, s := range list {
		if s.Name == x.Name {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func byAddrType(list []*discovery.EndpointSlice) map[discovery.AddressType][]*discovery.EndpointSlice {
	out := map[discovery.AddressType][]*discovery.EndpointSlice{}
	for _, s := range list {
		out[s.AddressType] = append(out[s.AddressType], s)
	}
	return out
}

// newSlice returns the mirrored slice for one group (EP-M-02): the Endpoints' labels plus
// service-name and managed-by, its annotations except last-applied and trigger time, a
// controller reference to the Endpoints; named name, or generateName "<endpoints>-".
func newSlice(endpoints *corev1.Endpoints, ports []discovery.EndpointPort, addrType discovery.AddressType, name string) *discovery.EndpointSlice {
	owner := metav1.NewControllerRef(endpoints, schema.GroupVersionKind{Version: "v1", Kind: "Endpoints"})
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{*owner},
			Namespace:       endpoints.Namespace,
		},
		Ports:       ports,
		AddressType: addrType,
		Endpoints:   []discovery.Endpoint{},
	}
	maps.Copy(s.Labels, endpoints.Labels)
	s.Labels[discovery.LabelServiceName] = endpoints.Name
	s.Labels[discovery.LabelManagedBy] = ControllerName
	for k, v := range endpoints.Annotations {
		if k != corev1.EndpointsLastChangeTriggerTime && k != corev1.LastAppliedConfigAnnotation {
			s.Annotations[k] = v
		}
	}
	if name != "" {
		s.Name = name
	} else {
		s.GenerateName = slicePrefix(endpoints.Name)
	}
	return s
}

// slicePrefix is "<name>-", or name if that is not a valid generateName.
func slicePrefix(name string) string {
	prefix := name + "-"
	if len(apivalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

// addressToEndpoint converts an Endpoints address (EP-M-03); ok is false for an invalid IP.
func addressToEndpoint(a corev1.EndpointAddress, ready bool) (*discovery.Endpoint, discovery.AddressType, bool) {
	ip := netutils.ParseIPSloppy(a.IP)
	if ip == nil {
		return nil, "", false
	}
	t := discovery.AddressTypeIPv4
	if ip.To4() == nil {
		t = discovery.AddressTypeIPv6
	}
	ep := &discovery.Endpoint{
		Addresses:  []string{ip.String()},
		Conditions: discovery.EndpointConditions{Ready: &ready},
		TargetRef:  a.TargetRef,
		NodeName:   a.NodeName,
	}
	if a.Hostname != "" {
		ep.Hostname = &a.Hostname
	}
	return ep, t, true
}

func epPortsToSlicePorts(ports []corev1.EndpointPort) []discovery.EndpointPort {
	out := []discovery.EndpointPort{}
	for _, p := range ports {
		p := p.DeepCopy()
		out = append(out, discovery.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol, AppProtocol: p.AppProtocol})
	}
	return out
}

func withoutKeys(m map[string]string, keys ...string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}
