package printers

// Printers for networking.k8s.io/v1 and discovery.k8s.io/v1 kinds, ported from
// kubernetes/kubernetes v1.37.2 pkg/printers/internalversion/printers.go (printIngress, formatHosts,
// formatPorts, ingressLoadBalancerStatusStringer, printIngressClass, printEndpointSlice,
// formatDiscoveryPorts, formatDiscoveryEndpoints, listWithMoreString), always with
// GenerateOptions{Wide: true}.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func ingressCells(ing *networkingv1.Ingress, now time.Time) []any {
	className := "<none>"
	if ing.Spec.IngressClassName != nil {
		className = *ing.Spec.IngressClassName
	}
	return []any{
		ing.Name,
		className,
		formatHosts(ing.Spec.Rules),
		loadBalancerStatusString(ingressLBAddresses(ing.Status.LoadBalancer.Ingress), serverWide),
		formatIngressPorts(ing.Spec.TLS),
		age(ing.CreationTimestamp, now),
	}
}

// ingressLBAddresses returns, per ingress point, its IP or (when no IP is set) its hostname.
func ingressLBAddresses(ingress []networkingv1.IngressLoadBalancerIngress) []string {
	addrs := make([]string, 0, len(ingress))
	for i := range ingress {
		if ingress[i].IP != "" {
			addrs = append(addrs, ingress[i].IP)
		} else if ingress[i].Hostname != "" {
			addrs = append(addrs, ingress[i].Hostname)
		}
	}
	return addrs
}

// formatHosts lists up to three non-empty rule hosts, "*" when there are none, and
// " + N more..." counting every rule past the third (hosts or not), as upstream does.
func formatHosts(rules []networkingv1.IngressRule) string {
	var list []string
	const maxShown = 3
	more := false
	for _, rule := range rules {
		if len(list) == maxShown {
			more = true
		}
		if !more && rule.Host != "" {
			list = append(list, rule.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, len(rules)-maxShown)
	}
	return ret
}

// formatIngressPorts is upstream's formatPorts: "80", or "80, 443" when TLS is configured.
func formatIngressPorts(tls []networkingv1.IngressTLS) string {
	if len(tls) != 0 {
		return "80, 443"
	}
	return "80"
}

func ingressClassCells(ic *networkingv1.IngressClass, now time.Time) []any {
	parameters := "<none>"
	if p := ic.Spec.Parameters; p != nil {
		parameters = p.Kind
		if p.APIGroup != nil {
			parameters = parameters + "." + *p.APIGroup
		}
		parameters = parameters + "/" + p.Name
	}
	name := ic.Name
	// pkg/apis/networking/util.HasDefaultAnnotation.
	if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
		name += " (default)"
	}
	return []any{name, ic.Spec.Controller, parameters, age(ic.CreationTimestamp, now)}
}

func endpointSliceCells(s *discoveryv1.EndpointSlice, now time.Time) []any {
	return []any{
		s.Name,
		string(s.AddressType),
		formatDiscoveryPorts(s.Ports),
		formatDiscoveryEndpoints(s.Endpoints),
		age(s.CreationTimestamp, now),
	}
}

// formatDiscoveryPorts lists up to three ports: the number, else the name, else "*".
func formatDiscoveryPorts(ports []discoveryv1.EndpointPort) string {
	var list []string
	const maxShown = 3
	more := false
	count := 0
	for _, port := range ports {
		if len(list) < maxShown {
			portNum := "*"
			if port.Port != nil {
				portNum = strconv.Itoa(int(*port.Port))
			} else if port.Name != nil {
				portNum = *port.Name
			}
			list = append(list, portNum)
		} else if len(list) == maxShown {
			more = true
		}
		count++
	}
	return listWithMoreString(list, more, count, maxShown)
}

// formatDiscoveryEndpoints lists up to three addresses across all endpoints.
func formatDiscoveryEndpoints(endpoints []discoveryv1.Endpoint) string {
	var list []string
	const maxShown = 3
	more := false
	count := 0
	for _, endpoint := range endpoints {
		for _, address := range endpoint.Addresses {
			if len(list) < maxShown {
				list = append(list, address)
			} else if len(list) == maxShown {
				more = true
			}
			count++
		}
	}
	return listWithMoreString(list, more, count, maxShown)
}

func listWithMoreString(list []string, more bool, count, maxShown int) string {
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-maxShown)
	}
	if ret == "" {
		ret = "<unset>"
	}
	return ret
}
