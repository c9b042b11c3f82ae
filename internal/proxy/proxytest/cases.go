package proxytest

// Cases is the behaviour table: every case runs against every mode (see Deviation). Names
// are subtest names: TestProxy/<mode>/<name>. The dynamic cases (Dynamic) follow.
func Cases() []Case {
	spread := []string{"p1", "p2", "p3"}
	node2 := []string{"p2", "p3"}
	// The userspace proxy makes its own connection to the endpoint, from the node it runs on.
	noSourceIP := func(n int, exp Expect) *Deviation {
		exp.Source = NodeAddr(n)
		return &Deviation{Why: "the userspace proxy connects to the endpoint itself: the endpoint sees the proxying node's address, never the client's", Expect: exp}
	}
	reachEvery := func(eps []string, src Source) Expect {
		return Expect{Outcome: ReachesEvery, Endpoints: eps, Source: src}
	}
	reach := func(eps []string, src Source) Expect { return Expect{Outcome: Reaches, Endpoints: eps, Source: src} }
	refusedExp := Expect{Outcome: Refused}
	dropped := Expect{Outcome: TimesOut}
	health := func(status, n int) Expect {
		return Expect{Outcome: Healthy, Health: Health{Status: status, LocalEndpoints: n}}
	}
	return []Case{
		// Controls: the world without a Service (pod network, routes, the probes).
		{Name: "control: pod on node1 to a pod on node2 directly, source kept", Rule: "(world)",
			From: PodOn(1), To: PodIP("p2", "http"), Expect: reach([]string{"p2"}, Self)},
		{Name: "control: pod on node2 to a pod on node1 directly over UDP, source kept", Rule: "(world)",
			From: PodOn(2), To: PodIP("p1", "udp"), Expect: reach([]string{"p1"}, Self)},

		// ClusterIP, random choice among all ready endpoints (§5.2, PX-E-01, PX-E-05).
		{Name: "pod on node1 to ClusterIP reaches every endpoint, source kept", Rule: "PX-E-05 PX-M-03",
			From: PodOn(1), To: ClusterIP("spread", "http"), Expect: reachEvery(spread, Self), Userspace: noSourceIP(1, reachEvery(spread, Self))},
		{Name: "pod on node2 to ClusterIP reaches every endpoint, source kept", Rule: "PX-E-05 PX-M-03",
			From: PodOn(2), To: ClusterIP("spread", "http"), Expect: reachEvery(spread, Self), Userspace: noSourceIP(2, reachEvery(spread, Self))},
		{Name: "node to ClusterIP reaches an endpoint, masqueraded", Rule: "PX-M-03(b)",
			From: Node(1), To: ClusterIP("spread", "http"), Expect: reach(spread, NodeAddr(1))},
		{Name: "pod to ClusterIP on an undefined port is refused", Rule: "§5.2",
			From: PodOn(1), To: ClusterIPPort("spread", 9999), Expect: refusedExp},

		// NodePort (§5.2, PX-T-05: externalTrafficPolicy Cluster masquerades).
		{Name: "client to NodePort on node1 reaches every endpoint, masqueraded", Rule: "§5.2 PX-T-05 PX-M-03(d)",
			From: Client, To: NodePort("spread", "http", 1), Expect: reachEvery(spread, NodeAddr(1))},
		{Name: "client to NodePort on node2 reaches an endpoint, masqueraded", Rule: "§5.2 PX-T-05",
			From: Client, To: NodePort("spread", "http", 2), Expect: reach(spread, NodeAddr(2))},
		{Name: "pod on node1 to NodePort on node2 reaches an endpoint, masqueraded by node2", Rule: "§5.2 PX-M-03(d)",
			From: PodOn(1), To: NodePort("spread", "http", 2), Expect: reach(spread, NodeAddr(2))},
		{Name: "node to its own NodePort reaches an endpoint", Rule: "§5.2",
			From: Node(1), To: NodePort("spread", "http", 1), Expect: reach(spread, NodeAddr(1))},
		{Name: "node to NodePort on 127.0.0.1 is refused", Rule: "§5.2 (nftables: never loopback)",
			From: Node(1), To: LoopbackNodePort("spread", "http"), Expect: refusedExp},

		// externalIPs (§5.2).
		{Name: "client to externalIP reaches every endpoint, masqueraded", Rule: "§5.2 PX-T-05",
			From: Client, To: ExternalIP("spread", "http"), Expect: reachEvery(spread, NodeAddr(1))},
		{Name: "pod on node2 to externalIP reaches an endpoint, masqueraded", Rule: "§5.2 PX-M-03(d)",
			From: PodOn(2), To: ExternalIP("spread", "http"), Expect: reach(spread, NodeAddr(2))},
		{Name: "node to externalIP reaches an endpoint", Rule: "§5.2",
			From: Node(1), To: ExternalIP("spread", "http"), Expect: reach(spread, NodeAddr(1))},

		// LoadBalancer ingress IPs (§5.2, PX-03).
		{Name: "client to LB IP reaches every endpoint, masqueraded", Rule: "PX-03 PX-T-05",
			From: Client, To: LBIP("lb", "http", lbIP), Expect: reachEvery(spread, NodeAddr(1))},
		{Name: "pod on node1 to LB IP reaches an endpoint", Rule: "PX-03 PX-M-03(d)",
			From: PodOn(1), To: LBIP("lb", "http", lbIP), Expect: reach(spread, NodeAddr(1))},
		{Name: "node to LB IP reaches an endpoint", Rule: "PX-03",
			From: Node(2), To: LBIP("lb", "http", lbIP), Expect: reach(spread, NodeAddr(2))},
		{Name: "client to LB IP over UDP reaches an endpoint", Rule: "PX-03",
			From: Client, To: LBIP("lb", "udp", lbIP), Expect: reach(spread, NodeAddr(1))},
		{Name: "client in loadBalancerSourceRanges reaches an endpoint", Rule: "PX-F-01",
			From: Client, To: LBIP("lb-allow", "http", lbAllow), Expect: reach(spread, NodeAddr(1))},
		{Name: "client outside loadBalancerSourceRanges is dropped", Rule: "PX-F-01",
			From: Client, To: LBIP("lb-deny", "http", lbDeny), Expect: dropped},
		{Name: "loadBalancerSourceRanges do not apply to the NodePort", Rule: "PX-F-01",
			From: Client, To: NodePort("lb-deny", "http", 1), Expect: reach(spread, NodeAddr(1))},

		// UDP (§5.2 for every destination).
		{Name: "pod on node1 to ClusterIP over UDP reaches every endpoint, source kept", Rule: "PX-E-05 PX-M-03",
			From: PodOn(1), To: ClusterIP("spread", "udp"), Expect: reachEvery(spread, Self), Userspace: noSourceIP(1, reachEvery(spread, Self))},
		{Name: "node to ClusterIP over UDP reaches an endpoint", Rule: "PX-M-03(b)",
			From: Node(2), To: ClusterIP("spread", "udp"), Expect: reach(spread, NodeAddr(2))},
		{Name: "client to NodePort on node2 over UDP reaches an endpoint, masqueraded", Rule: "§5.2 PX-T-05",
			From: Client, To: NodePort("spread", "udp", 2), Expect: reach(spread, NodeAddr(2))},
		{Name: "client to externalIP over UDP reaches an endpoint", Rule: "§5.2",
			From: Client, To: ExternalIP("spread", "udp"), Expect: reach(spread, NodeAddr(1))},

		// Session affinity (§5.6).
		{Name: "ClientIP affinity sticks for a pod", Rule: "PX-A-01 PX-A-02",
			From: PodOn(2), To: ClusterIP("sticky", "http"), Expect: Expect{Outcome: Sticks, Endpoints: spread, Source: Self},
			Userspace: noSourceIP(2, Expect{Outcome: Sticks, Endpoints: spread})},
		{Name: "ClientIP affinity sticks for the client host through a NodePort", Rule: "PX-A-01 PX-A-02",
			From: Client, To: NodePort("sticky", "http", 1), Expect: Expect{Outcome: Sticks, Endpoints: spread, Source: NodeAddr(1)}},
		{Name: "ClientIP affinity sticks over UDP", Rule: "PX-A-01 PX-A-02",
			From: PodOn(1), To: ClusterIP("sticky", "udp"), Expect: Expect{Outcome: Sticks, Endpoints: spread, Source: Self},
			Userspace: noSourceIP(1, Expect{Outcome: Sticks, Endpoints: spread})},

		// externalTrafficPolicy: Local (PX-T-03, PX-T-04, PX-H-01).
		{Name: "eTP Local: client to NodePort on node1 reaches only the local endpoint, source kept", Rule: "PX-T-03 PX-E-02",
			From: Client, To: NodePort("local", "http", 1), Expect: reach([]string{"p1"}, Self),
			Userspace: noSourceIP(1, reach([]string{"p1"}, Self))},
		{Name: "eTP Local: client to NodePort on node2 reaches every local endpoint, source kept", Rule: "PX-T-03 PX-E-02",
			From: Client, To: NodePort("local", "http", 2), Expect: reachEvery(node2, Self),
			Userspace: noSourceIP(2, reachEvery(node2, Self))},
		{Name: "eTP Local: client to NodePort on a node without local endpoints is dropped", Rule: "PX-T-03",
			From: Client, To: NodePort("local-one", "http", 2), Expect: dropped},
		{Name: "eTP Local: client to NodePort on the endpoint's node reaches it", Rule: "PX-T-03",
			From: Client, To: NodePort("local-one", "http", 1), Expect: reach([]string{"p1"}, Self),
			Userspace: noSourceIP(1, reach([]string{"p1"}, Self))},
		{Name: "eTP Local: pod to NodePort on its node without local endpoints short-circuits to the cluster", Rule: "PX-T-04",
			From: PodOn(2), To: NodePort("local-one", "http", 2), Expect: reach([]string{"p1"}, Any)},
		{Name: "eTP Local: node to its NodePort without local endpoints short-circuits, masqueraded", Rule: "PX-T-04 PX-M-03(e)",
			From: Node(2), To: NodePort("local-one", "http", 2), Expect: reach([]string{"p1"}, NodeAddr(2))},
		{Name: "eTP Local: client to LB IP via node1 reaches only the local endpoint, source kept", Rule: "PX-T-03 PX-03",
			From: Client, To: LBIP("lb-local", "http", lbLocal1), Expect: reach([]string{"p1"}, Self),
			Userspace: noSourceIP(1, reach([]string{"p1"}, Self))},
		{Name: "eTP Local: client to LB IP via node2 reaches only local endpoints, source kept", Rule: "PX-T-03 PX-03",
			From: Client, To: LBIP("lb-local", "http", lbLocal2), Expect: reach(node2, Self),
			Userspace: noSourceIP(2, reach(node2, Self))},
		{Name: "health check on a node with a local endpoint answers 200", Rule: "PX-H-01",
			From: Client, To: HealthCheck("lb-local-one", 1), Expect: health(200, 1)},
		{Name: "health check on a node without local endpoints answers 503", Rule: "PX-H-01",
			From: Client, To: HealthCheck("lb-local-one", 2), Expect: health(503, 0)},
		{Name: "health check counts the local ready endpoints", Rule: "PX-H-01",
			From: Client, To: HealthCheck("lb-local", 2), Expect: health(200, 2)},

		// internalTrafficPolicy: Local (PX-T-02, PX-E-04).
		{Name: "iTP Local: pod on node1 reaches only the local endpoint", Rule: "PX-T-02 PX-E-04",
			From: PodOn(1), To: ClusterIP("itl", "http"), Expect: reach([]string{"p1"}, Self),
			Userspace: noSourceIP(1, reach([]string{"p1"}, Self))},
		{Name: "iTP Local: pod on node2 reaches every local endpoint", Rule: "PX-T-02 PX-E-04",
			From: PodOn(2), To: ClusterIP("itl", "http"), Expect: reachEvery(node2, Self),
			Userspace: noSourceIP(2, reachEvery(node2, Self))},
		{Name: "iTP Local: node reaches only the local endpoint", Rule: "PX-T-02",
			From: Node(1), To: ClusterIP("itl", "http"), Expect: reach([]string{"p1"}, NodeAddr(1))},
		{Name: "iTP Local: pod on a node without local endpoints is dropped", Rule: "PX-T-02",
			From: PodOn(2), To: ClusterIP("itl-one", "http"), Expect: dropped},
		{Name: "iTP Local does not apply to NodePorts", Rule: "PX-E-04",
			From: Client, To: NodePort("itl", "http", 1), Expect: reachEvery(spread, NodeAddr(1))},

		// No endpoints: reject (PX-T-01).
		{Name: "no endpoints: pod to ClusterIP is refused", Rule: "PX-T-01",
			From: PodOn(1), To: ClusterIP("empty", "http"), Expect: refusedExp},
		{Name: "no endpoints: node to ClusterIP is refused", Rule: "PX-T-01",
			From: Node(2), To: ClusterIP("empty", "http"), Expect: refusedExp},
		{Name: "no endpoints: client to NodePort is refused", Rule: "PX-T-01",
			From: Client, To: NodePort("empty", "http", 1), Expect: refusedExp},
		{Name: "no endpoints: client to externalIP is refused", Rule: "PX-T-01",
			From: Client, To: ExternalIP("empty", "http"), Expect: refusedExp},
		{Name: "no endpoints: pod to ClusterIP over UDP is refused", Rule: "PX-T-01",
			From: PodOn(2), To: ClusterIP("empty", "udp"), Expect: refusedExp},

		// Hairpin (PX-M-03(a)).
		{Name: "hairpin: pod reaches itself through its ClusterIP, masqueraded", Rule: "PX-M-03(a)",
			From: Pod("p1"), To: ClusterIP("hairpin", "http"), Expect: reach([]string{"p1"}, NodeAddr(1))},
		{Name: "hairpin: pod reaches itself through its ClusterIP over UDP", Rule: "PX-M-03(a)",
			From: Pod("p1"), To: ClusterIP("hairpin", "udp"), Expect: reach([]string{"p1"}, NodeAddr(1))},

		// Named targetPort resolved per pod (EP-S-05): p1 serves on 8080, n2 on 9090.
		{Name: "named targetPort with different numbers reaches every pod", Rule: "EP-S-05 PX-E-05",
			From: PodOn(1), To: ClusterIP("named", "http"), Expect: reachEvery([]string{"p1", "n2"}, Self),
			Userspace: noSourceIP(1, reachEvery([]string{"p1", "n2"}, Self))},

		// The proxy's own health and metrics servers (PX-H-02, issue 6 item 4).
		{Name: "proxy healthz answers healthy", Rule: "PX-H-02",
			From: Client, To: ProxyHealthz(1, "/healthz"), Expect: Expect{Outcome: ProxyHealthy}},
		{Name: "proxy livez answers healthy", Rule: "PX-H-02",
			From: Client, To: ProxyHealthz(2, "/livez"), Expect: Expect{Outcome: ProxyHealthy}},
		{Name: "proxy metrics have kube-proxy's names", Rule: "PX-H-02 (metrics)",
			From: Node(1), To: ProxyMetrics(1), Expect: Expect{Outcome: HasMetrics}},

		// Headless and ExternalName Services are not proxied (PX-01, §7): their externalIPs
		// are not served by any node.
		{Name: "headless Service is not proxied", Rule: "PX-01 §7.2",
			From: Client, To: ExternalIP("headless", "http"), Expect: Expect{Outcome: Fails}},
		{Name: "ExternalName Service is not proxied", Rule: "PX-01 §7.1",
			From: Client, To: ExternalIP("extname", "http"), Expect: Expect{Outcome: Fails}},
	}
}
