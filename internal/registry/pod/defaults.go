package pod

// Defaulting ported from k8s.io/kubernetes pkg/apis/core/v1/defaults.go (SetDefaults_Pod,
// SetDefaults_PodSpec, SetDefaults_Container, SetDefaults_Probe, SetDefaults_HTTPGetAction,
// SetDefaults_Volume and the volume-source defaulters, SetDefaults_PodStatus,
// SetDefaults_ResourceList) and the call tree of zz_generated.defaults.go
// (SetObjectDefaults_Pod / SetObjectDefaults_PodTemplate).
//
// Not ported: pod-level resources defaulting (PodLevelResources; kube 1.37 runs it in
// PrepareForCreate behind PodLevelResourcesFixDefaulting), the H2C probe protocol default
// (alpha, off) and the legacy volume plugins' field defaults (rbd, iscsi, azureDisk, scaleIO).

import (
	// The image reference parser needs these digest algorithms registered, as kube's
	// pkg/util/parsers does.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultPod applies every default kube-apiserver applies to a Pod: the pod-only defaults
// (requests from limits, enableServiceLinks, hostNetwork host ports), the PodSpec defaults
// and status.podIP/podIPs syncing.
func DefaultPod(p *corev1.Pod) {
	spec := &p.Spec
	if spec.TerminationGracePeriodSeconds != nil && *spec.TerminationGracePeriodSeconds < 0 {
		one := int64(1)
		spec.TerminationGracePeriodSeconds = &one
	}
	defaultRequestsFromLimits(spec.Containers)
	defaultRequestsFromLimits(spec.InitContainers)
	if spec.EnableServiceLinks == nil {
		enable := corev1.DefaultEnableServiceLinks
		spec.EnableServiceLinks = &enable
	}
	if spec.HostNetwork {
		defaultHostNetworkPorts(spec.Containers)
		defaultHostNetworkPorts(spec.InitContainers)
	}
	defaultPodSpec(spec)
	defaultPodStatus(&p.Status)
}

// DefaultPodTemplateSpec applies the defaults kube applies to a pod template embedded in a
// workload (Deployment, ReplicaSet, ReplicationController): the PodSpec defaults, but not
// the pod-only ones of DefaultPod.
func DefaultPodTemplateSpec(t *corev1.PodTemplateSpec) {
	if t == nil {
		return
	}
	defaultPodSpec(&t.Spec)
}

// defaultPodSpec is SetDefaults_PodSpec plus the defaulters generated for everything a
// PodSpec contains.
func defaultPodSpec(spec *corev1.PodSpec) {
	// SetDefaults_PodSpec: the deprecated serviceAccount alias follows serviceAccountName.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount //nolint:staticcheck // kept in sync as kube does
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName //nolint:staticcheck // kept in sync as kube does
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		period := int64(corev1.DefaultTerminationGracePeriodSeconds)
		spec.TerminationGracePeriodSeconds = &period
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}

	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	roundResourceList(spec.Overhead)
	if spec.Resources != nil {
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

// defaultContainer is SetDefaults_Container plus its ports, env, resources, probes and
// lifecycle handlers.
func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicyForImage(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		vf := c.Env[i].ValueFrom
		if vf == nil {
			continue
		}
		if vf.FieldRef != nil {
			defaultObjectFieldSelector(vf.FieldRef)
		}
		if vf.FileKeyRef != nil && vf.FileKeyRef.Optional == nil {
			optional := false
			vf.FileKeyRef.Optional = &optional
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			defaultProbe(p)
		}
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil && h.HTTPGet != nil {
				defaultHTTPGetAction(h.HTTPGet)
			}
		}
	}
}

// pullPolicyForImage is Always for an image tagged (or defaulting to) "latest" and
// IfNotPresent otherwise, including for unparsable references and digest-only ones.
func pullPolicyForImage(image string) corev1.PullPolicy {
	if imageTag(image) == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag is the tag part of k8s.io/kubernetes pkg/util/parsers.ParseImageName: the explicit
// tag, "latest" when neither tag nor digest is given, "" when unparsable.
func imageTag(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	var tag string
	if tagged, ok := named.(reference.Tagged); ok {
		tag = tagged.Tag()
	}
	if _, ok := named.(reference.Digested); !ok && tag == "" {
		tag = "latest"
	}
	return tag
}

func defaultProbe(p *corev1.Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if p.HTTPGet != nil {
		defaultHTTPGetAction(p.HTTPGet)
	}
	if p.GRPC != nil && p.GRPC.Service == nil {
		empty := ""
		p.GRPC.Service = &empty
	}
}

func defaultHTTPGetAction(a *corev1.HTTPGetAction) {
	if a.Path == "" {
		a.Path = "/"
	}
	if a.Scheme == "" {
		a.Scheme = corev1.URISchemeHTTP
	}
}

func defaultObjectFieldSelector(s *corev1.ObjectFieldSelector) {
	if s.APIVersion == "" {
		s.APIVersion = "v1"
	}
}

// defaultVolume is SetDefaults_Volume plus the defaulters of the common volume sources.
func defaultVolume(v *corev1.Volume) {
	src := &v.VolumeSource
	if volumeSourceCount(src) == 0 {
		src.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if src.Image != nil && src.Image.PullPolicy == "" {
		src.Image.PullPolicy = pullPolicyForImage(src.Image.Reference)
	}
	if src.HostPath != nil && src.HostPath.Type == nil {
		unset := corev1.HostPathUnset
		src.HostPath.Type = &unset
	}
	if src.Secret != nil && src.Secret.DefaultMode == nil {
		mode := corev1.SecretVolumeSourceDefaultMode
		src.Secret.DefaultMode = &mode
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		mode := corev1.ConfigMapVolumeSourceDefaultMode
		src.ConfigMap.DefaultMode = &mode
	}
	if src.DownwardAPI != nil {
		if src.DownwardAPI.DefaultMode == nil {
			mode := corev1.DownwardAPIVolumeSourceDefaultMode
			src.DownwardAPI.DefaultMode = &mode
		}
		for i := range src.DownwardAPI.Items {
			if fr := src.DownwardAPI.Items[i].FieldRef; fr != nil {
				defaultObjectFieldSelector(fr)
			}
		}
	}
	if src.Projected != nil {
		if src.Projected.DefaultMode == nil {
			mode := corev1.ProjectedVolumeSourceDefaultMode
			src.Projected.DefaultMode = &mode
		}
		for i := range src.Projected.Sources {
			ps := &src.Projected.Sources[i]
			if ps.DownwardAPI != nil {
				for j := range ps.DownwardAPI.Items {
					if fr := ps.DownwardAPI.Items[j].FieldRef; fr != nil {
						defaultObjectFieldSelector(fr)
					}
				}
			}
			if ps.ServiceAccountToken != nil && ps.ServiceAccountToken.ExpirationSeconds == nil {
				hour := int64(3600)
				ps.ServiceAccountToken.ExpirationSeconds = &hour
			}
		}
	}
	if src.Ephemeral != nil && src.Ephemeral.VolumeClaimTemplate != nil {
		spec := &src.Ephemeral.VolumeClaimTemplate.Spec
		if spec.VolumeMode == nil {
			mode := corev1.PersistentVolumeFilesystem
			spec.VolumeMode = &mode
		}
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

// defaultRequestsFromLimits copies each limit without a request into the requests
// (SetDefaults_Pod; pods only, not templates).
func defaultRequestsFromLimits(containers []corev1.Container) {
	for i := range containers {
		res := &containers[i].Resources
		if res.Limits == nil {
			continue
		}
		if res.Requests == nil {
			res.Requests = make(corev1.ResourceList, len(res.Limits))
		}
		for name, limit := range res.Limits {
			if _, ok := res.Requests[name]; !ok {
				res.Requests[name] = limit.DeepCopy()
			}
		}
	}
}

// defaultHostNetworkPorts sets hostPort = containerPort where unset (hostNetwork pods).
func defaultHostNetworkPorts(containers []corev1.Container) {
	for i := range containers {
		for j := range containers[i].Ports {
			if containers[i].Ports[j].HostPort == 0 {
				containers[i].Ports[j].HostPort = containers[i].Ports[j].ContainerPort
			}
		}
	}
}

// defaultPodStatus keeps status.podIP and status.podIPs in sync; podIP wins on conflict.
func defaultPodStatus(s *corev1.PodStatus) {
	hasIP, hasIPs := s.PodIP != "", len(s.PodIPs) > 0
	switch {
	case hasIP && !hasIPs:
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	case !hasIP && hasIPs:
		s.PodIP = s.PodIPs[0].IP
	case hasIP && hasIPs && s.PodIPs[0].IP != s.PodIP:
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	for _, statuses := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses, s.EphemeralContainerStatuses} {
		for i := range statuses {
			roundResourceList(statuses[i].AllocatedResources)
			if r := statuses[i].Resources; r != nil {
				roundResourceList(r.Limits)
				roundResourceList(r.Requests)
			}
		}
	}
	roundResourceList(s.AllocatedResources)
	if s.Resources != nil {
		roundResourceList(s.Resources.Limits)
		roundResourceList(s.Resources.Requests)
	}
}

// roundResourceList rounds every quantity up to milli precision (SetDefaults_ResourceList).
func roundResourceList(list corev1.ResourceList) {
	for name, q := range list {
		q.RoundUp(resource.Milli)
		list[name] = q
	}
}
