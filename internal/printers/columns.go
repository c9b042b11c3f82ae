package printers

// Column definitions, copied from kubernetes/kubernetes v1.37.2
// pkg/printers/internalversion/printers.go, AddHandlers. Descriptions come from the same
// SwaggerDoc() tables upstream reads (k8s.io/api v0.37.2, the version kube-apiserver 1.37.2
// vendors), so the text matches byte for byte.

import (
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Shared descriptions, as upstream spells them.
var (
	nameColumn     = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: swaggerMeta["name"]}
	ageColumn      = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: swaggerMeta["creationTimestamp"]}
	containersDesc = "Names of each container in the template."
	imagesDesc     = "Images referenced by each container in the template."
)

func col(name, typ, desc string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: desc}
}

func wide(name, typ, desc string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: desc, Priority: 1}
}

var (
	podStatusDoc  = corev1.PodStatus{}.SwaggerDoc()
	podSpecDoc    = corev1.PodSpec{}.SwaggerDoc()
	rcSpecDoc     = corev1.ReplicationControllerSpec{}.SwaggerDoc()
	rcStatusDoc   = corev1.ReplicationControllerStatus{}.SwaggerDoc()
	rsSpecDoc     = appsv1.ReplicaSetSpec{}.SwaggerDoc()
	rsStatusDoc   = appsv1.ReplicaSetStatus{}.SwaggerDoc()
	svcSpecDoc    = corev1.ServiceSpec{}.SwaggerDoc()
	nodeInfoDoc   = corev1.NodeSystemInfo{}.SwaggerDoc()
	nodeStatusDoc = corev1.NodeStatus{}.SwaggerDoc()
	eventDoc      = corev1.Event{}.SwaggerDoc()
	objRefDoc     = corev1.ObjectReference{}.SwaggerDoc()
	deployStatDoc = appsv1.DeploymentStatus{}.SwaggerDoc()
	deploySpecDoc = appsv1.DeploymentSpec{}.SwaggerDoc()
	sliceDoc      = discoveryv1.EndpointSlice{}.SwaggerDoc()
)

var podColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
	col("Status", "string", "The aggregate status of the containers in this pod."),
	col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
	ageColumn,
	wide("IP", "string", podStatusDoc["podIP"]),
	wide("Node", "string", podSpecDoc["nodeName"]),
	wide("Nominated Node", "string", podStatusDoc["nominatedNodeName"]),
	wide("Readiness Gates", "string", podSpecDoc["readinessGates"]),
}

var replicationControllerColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Desired", "integer", rcSpecDoc["replicas"]),
	col("Current", "integer", rcStatusDoc["replicas"]),
	col("Ready", "integer", rcStatusDoc["readyReplicas"]),
	ageColumn,
	wide("Containers", "string", containersDesc),
	wide("Images", "string", imagesDesc),
	wide("Selector", "string", rcSpecDoc["selector"]),
}

var replicaSetColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Desired", "integer", rsSpecDoc["replicas"]),
	col("Current", "integer", rsStatusDoc["replicas"]),
	col("Ready", "integer", rsStatusDoc["readyReplicas"]),
	ageColumn,
	wide("Containers", "string", containersDesc),
	wide("Images", "string", imagesDesc),
	wide("Selector", "string", rsSpecDoc["selector"]),
}

var serviceColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Type", "string", svcSpecDoc["type"]),
	col("Cluster-IP", "string", svcSpecDoc["clusterIP"]),
	col("External-IP", "string", svcSpecDoc["externalIPs"]),
	col("Port(s)", "string", svcSpecDoc["ports"]),
	ageColumn,
	wide("Selector", "string", svcSpecDoc["selector"]),
}

var ingressColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
	col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
	col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
	col("Ports", "string", "Ports of TLS configurations that open"),
	ageColumn,
}

var ingressClassColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Controller", "string", "Controller that is responsible for handling this class"),
	col("Parameters", "string", "A reference to a resource with additional parameters"),
	ageColumn,
}

var endpointsColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
	ageColumn,
}

var nodeColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Status", "string", "The status of the node"),
	col("Roles", "string", "The roles of the node"),
	ageColumn,
	col("Version", "string", nodeInfoDoc["kubeletVersion"]),
	wide("Internal-IP", "string", nodeStatusDoc["addresses"]),
	wide("External-IP", "string", nodeStatusDoc["addresses"]),
	wide("OS-Image", "string", nodeInfoDoc["osImage"]),
	wide("Kernel-Version", "string", nodeInfoDoc["kernelVersion"]),
	wide("Container-Runtime", "string", nodeInfoDoc["containerRuntimeVersion"]),
}

var eventColumns = []metav1.TableColumnDefinition{
	col("Last Seen", "string", eventDoc["lastTimestamp"]),
	col("Type", "string", eventDoc["type"]),
	col("Reason", "string", eventDoc["reason"]),
	col("Object", "string", eventDoc["involvedObject"]),
	wide("Subobject", "string", objRefDoc["fieldPath"]),
	wide("Source", "string", eventDoc["source"]),
	col("Message", "string", eventDoc["message"]),
	wide("First Seen", "string", eventDoc["firstTimestamp"]),
	wide("Count", "string", eventDoc["count"]),
	{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: swaggerMeta["name"]},
}

var namespaceColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Status", "string", "The status of the namespace"),
	ageColumn,
}

var secretColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Type", "string", corev1.Secret{}.SwaggerDoc()["type"]),
	col("Data", "string", corev1.Secret{}.SwaggerDoc()["data"]),
	ageColumn,
}

// kube 1.37 no longer prints the number of token secrets.
var serviceAccountColumns = []metav1.TableColumnDefinition{nameColumn, ageColumn}

var deploymentColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Ready", "string", "Number of the pod with ready state"),
	col("Up-to-date", "string", deployStatDoc["updatedReplicas"]),
	col("Available", "string", deployStatDoc["availableReplicas"]),
	ageColumn,
	wide("Containers", "string", containersDesc),
	wide("Images", "string", imagesDesc),
	wide("Selector", "string", deploySpecDoc["selector"]),
}

var configMapColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
	ageColumn,
}

var leaseColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
	ageColumn,
}

var endpointSliceColumns = []metav1.TableColumnDefinition{
	nameColumn,
	col("AddressType", "string", sliceDoc["addressType"]),
	col("Ports", "string", sliceDoc["ports"]),
	col("Endpoints", "string", sliceDoc["endpoints"]),
	ageColumn,
}

// byResource maps every resource kube-apiserver has a printer for (among those kubesvc serves)
// to its Printer.
var byResource = map[schema.GroupResource]*Printer{
	corev1.Resource("configmaps"):             {Columns: configMapColumns, Cells: typed(configMapCells)},
	corev1.Resource("endpoints"):              {Columns: endpointsColumns, Cells: typed(endpointsCells)},
	corev1.Resource("events"):                 {Columns: eventColumns, Cells: typed(eventCells)},
	corev1.Resource("namespaces"):             {Columns: namespaceColumns, Cells: typed(namespaceCells)},
	corev1.Resource("nodes"):                  {Columns: nodeColumns, Cells: typed(nodeCells)},
	corev1.Resource("pods"):                   {Columns: podColumns, Cells: typed(podCells), Conditions: podConditions},
	corev1.Resource("replicationcontrollers"): {Columns: replicationControllerColumns, Cells: typed(replicationControllerCells)},
	corev1.Resource("secrets"):                {Columns: secretColumns, Cells: typed(secretCells)},
	corev1.Resource("serviceaccounts"):        {Columns: serviceAccountColumns, Cells: typed(serviceAccountCells)},
	corev1.Resource("services"):               {Columns: serviceColumns, Cells: typed(serviceCells)},
	appsv1.Resource("deployments"):            {Columns: deploymentColumns, Cells: typed(deploymentCells)},
	appsv1.Resource("replicasets"):            {Columns: replicaSetColumns, Cells: typed(replicaSetCells)},
	coordinationv1.Resource("leases"):         {Columns: leaseColumns, Cells: typed(leaseCells)},
	discoveryv1.Resource("endpointslices"):    {Columns: endpointSliceColumns, Cells: typed(endpointSliceCells)},
	networkingv1.Resource("ingressclasses"):   {Columns: ingressClassColumns, Cells: typed(ingressClassCells)},
	networkingv1.Resource("ingresses"):        {Columns: ingressColumns, Cells: typed(ingressCells)},
}
